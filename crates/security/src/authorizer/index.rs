//! The ACLs of one resource type, indexed for the per-request lookup: literal names in one
//! ordered map (the wildcard `*` is one of its keys), prefixes in another. Finding the ACLs
//! that apply to a name is two map lookups plus a walk over only the prefixes that could
//! match; nothing is allocated.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound::{Included, Unbounded};
use std::ops::ControlFlow;

use super::types::{AclOperation, AclPermissionType, PatternType};
use super::WILDCARD;

/// The part of an ACL below its resource pattern. Ordered so a resource's ACLs iterate
/// deterministically.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct AclEntry {
    pub(crate) principal: String,
    pub(crate) host: String,
    pub(crate) operation: AclOperation,
    pub(crate) permission: AclPermissionType,
}

/// A resource name's ACLs.
pub(crate) type Entries = BTreeSet<AclEntry>;

/// The ACLs of one resource type.
#[derive(Debug, Clone, Default)]
pub(crate) struct TypeAcls {
    pub(crate) literal: BTreeMap<String, Entries>,
    pub(crate) prefixed: BTreeMap<String, Entries>,
}

impl TypeAcls {
    fn map_mut(&mut self, pattern_type: PatternType) -> Option<&mut BTreeMap<String, Entries>> {
        match pattern_type {
            PatternType::Literal => Some(&mut self.literal),
            PatternType::Prefixed => Some(&mut self.prefixed),
            _ => None,
        }
    }

    /// Adds an ACL; false if it was there already, or if the pattern type is neither
    /// literal nor prefixed (such a binding cannot pass validation).
    pub(crate) fn insert(&mut self, pattern_type: PatternType, name: &str, entry: AclEntry) -> bool {
        let Some(map) = self.map_mut(pattern_type) else { return false };
        match map.get_mut(name) {
            Some(entries) => entries.insert(entry),
            None => {
                map.insert(name.to_owned(), BTreeSet::from([entry]));
                true
            }
        }
    }

    /// Removes an ACL; false if it was not there.
    pub(crate) fn remove(&mut self, pattern_type: PatternType, name: &str, entry: &AclEntry) -> bool {
        let Some(map) = self.map_mut(pattern_type) else { return false };
        let Some(entries) = map.get_mut(name) else { return false };
        let removed = entries.remove(entry);
        if entries.is_empty() {
            map.remove(name);
        }
        removed
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.literal.is_empty() && self.prefixed.is_empty()
    }

    /// Calls `visit` with the ACLs of every pattern that applies to the resource `name`:
    /// the literal `name`, the literal wildcard `*`, and every prefix of `name` that is a
    /// prefixed pattern. Stops early when `visit` breaks.
    pub(crate) fn for_each_applicable(
        &self,
        name: &str,
        mut visit: impl FnMut(&Entries) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        if let Some(entries) = self.literal.get(name) {
            visit(entries)?;
        }
        if name != WILDCARD {
            if let Some(entries) = self.literal.get(WILDCARD) {
                visit(entries)?;
            }
        }
        for_each_prefix_of(&self.prefixed, name, |_, entries| visit(entries))
    }
}

/// Calls `visit` with every key of `map` that is a prefix of `name` (`name` itself
/// included), longest first.
///
/// Walks down from `name` in key order. A key that is a prefix of `name` is visited. A key
/// `k` that is not diverges from `name` at some byte `n` with `k[n] < name[n]`; every
/// smaller key that is still a prefix of `name` must then be at most `name[..n]` long, so
/// the walk jumps to the keys up to `name[..n]`. Each jump shortens the bound, so the walk
/// touches the matching prefixes plus at most one key per jump.
pub(crate) fn for_each_prefix_of<'a, V>(
    map: &'a BTreeMap<String, V>,
    name: &str,
    mut visit: impl FnMut(&'a str, &'a V) -> ControlFlow<()>,
) -> ControlFlow<()> {
    let mut keys = map.range::<str, _>((Unbounded, Included(name))).rev();
    while let Some((key, value)) = keys.next() {
        if name.starts_with(key.as_str()) {
            visit(key, value)?;
            continue;
        }
        let mut common = key.bytes().zip(name.bytes()).take_while(|(a, b)| a == b).count();
        // A key is valid UTF-8, so a key that is a prefix of `name` ends on a char boundary.
        while !name.is_char_boundary(common) {
            common -= 1;
        }
        keys = map.range::<str, _>((Unbounded, Included(&name[..common]))).rev();
    }
    ControlFlow::Continue(())
}
