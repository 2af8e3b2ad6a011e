//! The prefix walk against a plain scan of every key.

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use super::super::index::for_each_prefix_of;
use super::*;

fn walked(map: &BTreeMap<String, ()>, name: &str) -> Vec<String> {
    let mut found = Vec::new();
    let _ = for_each_prefix_of(map, name, |key, _| {
        found.push(key.to_owned());
        ControlFlow::Continue(())
    });
    found
}

fn scanned(map: &BTreeMap<String, ()>, name: &str) -> Vec<String> {
    map.keys().rev().filter(|key| name.starts_with(key.as_str())).cloned().collect()
}

fn map_of(keys: &[&str]) -> BTreeMap<String, ()> {
    keys.iter().map(|key| ((*key).to_owned(), ())).collect()
}

#[test]
fn given_kafkas_ordering_example_when_walking_prefixes_should_find_each_prefix_longest_first() {
    let map = map_of(&["gar", "foobar", "foob", "foo", "fb", "fa", "f", "eeee", "foobarbaz", "fooc", "fo-"]);
    assert_eq!(walked(&map, "foobar"), ["foobar", "foob", "foo", "f"]);
    assert_eq!(walked(&map, "fz"), ["f"]);
    assert_eq!(walked(&map, "e"), Vec::<String>::new());
    assert_eq!(walked(&map, ""), Vec::<String>::new());
}

#[test]
fn given_a_break_when_walking_prefixes_should_stop() {
    let map = map_of(&["a", "ab", "abc"]);
    let mut seen = 0;
    let flow = for_each_prefix_of(&map, "abcd", |_, _| {
        seen += 1;
        ControlFlow::Break(())
    });
    assert!(flow.is_break());
    assert_eq!(seen, 1);
}

#[test]
fn given_multibyte_names_when_walking_prefixes_should_step_on_char_boundaries() {
    let map = map_of(&["é", "éa", "è", "ü-", "ü", "日本", "日"]);
    assert_eq!(walked(&map, "éab"), ["éa", "é"]);
    assert_eq!(walked(&map, "êx"), Vec::<String>::new(), "shares a first byte with é and è");
    assert_eq!(walked(&map, "日本語"), ["日本", "日"]);
    assert_eq!(walked(&map, "日曜"), ["日"]);
    let authorizer = authorizer([prefixed(Topic, "é", ALICE, Read, Allow)]);
    assert!(alice_may(&authorizer, Read, "été"));
    assert!(!alice_may(&authorizer, Read, "êté"));
}

#[test]
fn given_random_keys_when_walking_prefixes_should_agree_with_a_scan() {
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    let alphabet = ['a', 'b', 'c', '.', 'é', 'z'];
    let mut word = |max: usize| (0..1 + next(max)).map(|_| alphabet[next(alphabet.len())]).collect::<String>();
    for _ in 0..300 {
        let keys: Vec<String> = (0..20).map(|_| word(4)).collect();
        let map: BTreeMap<String, ()> = keys.into_iter().map(|key| (key, ())).collect();
        for _ in 0..20 {
            let name = word(7);
            assert_eq!(walked(&map, &name), scanned(&map, &name), "{name} in {:?}", map.keys());
        }
    }
}
