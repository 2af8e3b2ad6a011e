"""The web console at `/`, driven in headless Chromium (Debian's `chromium` and
`chromium-driver`, installed by scripts/browser-env) with Selenium; nothing is downloaded.

- `test_admin_console`: a wrong password shows an error, then `alice` (admin) logs in
  (HttpOnly, SameSite=Strict session cookie); creates a topic in the form; produces a JSON
  message with a header from the produce form and finds it in the message browser (pretty
  JSON, the header, a search, a start from a date and time); sees text and binary records
  written by a Kafka client (escaped, hex); changes a topic config in place; watches a
  group's lag fall on the group page while a confluent-kafka consumer runs and commits;
  after the consumer closes, resets the group to the earliest offsets with a preview and
  sees the lag back at the full count; a cookie change without the console's header is
  refused; logs out.
- `test_viewer_is_read_only`: `bob` (viewer) sees topics and configs but no delete,
  create, produce or config controls, and a DELETE forced from the page gets 403 and
  changes nothing.

With `GREGOR_CONSOLE_SCREENSHOTS=<dir>` the first test saves `console-*.png` of the main
views there (docs/img holds the ones docs/console.md shows).
"""
from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import ConfigResource, ResourceType
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from gregor_support import admin, confluent_producer, create_topic, produce_confluent, topic_partitions
from test_cluster import free_ports

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
USERS = "alice:wonderland:admin,bob:builder:viewer"
TOPIC = "console-orders"
GROUP = "console-group"
BULK = 200  # messages a Kafka client writes besides the one from the form


# ---------------------------------------------------------------- browser helpers


@pytest.fixture
def browser(tmp_path):
    missing = [exe for exe in (CHROMIUM, CHROMEDRIVER) if not os.access(exe, os.X_OK)]
    if missing:
        pytest.fail(f"{', '.join(missing)} missing: run scripts/browser-env (Debian's chromium and chromium-driver)")
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never download a browser or driver
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"]:
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.failure_dir = tmp_path
    try:
        yield driver
    finally:
        driver.quit()


def wait(d, condition, what: str, timeout: float = 20.0):
    """Waits for `condition(d)` to be truthy; on a timeout saves a screenshot and reports
    the page's URL and visible errors."""
    try:
        return WebDriverWait(d, timeout, poll_frequency=0.1,
                             ignored_exceptions=(StaleElementReferenceException,)).until(condition)
    except TimeoutException:
        shot = Path(d.failure_dir) / "failure.png"
        d.save_screenshot(str(shot))
        errors = [e.text for e in d.find_elements(By.CSS_SELECTOR, ".error") if e.is_displayed()]
        raise AssertionError(f"timed out waiting for {what} at {d.current_url}; errors shown: {errors}; "
                             f"screenshot {shot}") from None


def css(d, selector: str):
    return d.find_elements(By.CSS_SELECTOR, selector)


def shown(d, selector: str, timeout: float = 20.0):
    """The first visible element matching `selector`."""
    def find(drv):
        return next((e for e in css(drv, selector) if e.is_displayed()), None)
    return wait(d, find, f"{selector} to show", timeout)


def fill(d, selector: str, text: str) -> None:
    el = shown(d, selector)
    el.clear()
    el.send_keys(text)


def click(d, selector: str) -> None:
    shown(d, selector).click()


def go(d, base: str, hash_: str) -> None:
    d.execute_script("location.hash = arguments[0]", hash_)
    wait(d, lambda drv: drv.execute_script("return location.hash") == hash_, f"hash {hash_}")


def number(d, selector: str) -> int | None:
    """The `data-value` of the first element matching `selector` (None when absent)."""
    els = css(d, selector)
    value = els[0].get_attribute("data-value") if els else None
    return int(value) if value not in (None, "") else None


def screenshot(d, name: str) -> None:
    target = os.environ.get("GREGOR_CONSOLE_SCREENSHOTS")
    if not target:
        return
    Path(target).mkdir(parents=True, exist_ok=True)
    for toast in css(d, "#toasts .toast"):  # transient notices would cover the page
        d.execute_script("arguments[0].remove()", toast)
    ActionChains(d).move_to_element(shown(d, ".brand, .login-card h1")).perform()  # no hover effects
    d.save_screenshot(str(Path(target) / f"console-{name}.png"))


def log_in(d, user: str, password: str) -> None:
    fill(d, "#login-user", user)
    fill(d, "#login-password", password)
    click(d, "#login-submit")


def fetch_status(d, method: str, path: str) -> int:
    """The status of a fetch made from the page (with its session cookie)."""
    return d.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0], {method: arguments[1], headers: {'X-Gregor-Console': '1'}})"
        ".then(r => done(r.status), e => done(String(e)));", path, method)


def start_broker(broker_factory):
    http = free_ports(1)[0]
    b = broker_factory().start(sets={"console.users": USERS}, extra_args=["--http-listen", f"127.0.0.1:{http}"])
    return b, f"http://127.0.0.1:{http}"


# ---------------------------------------------------------------- the consumer


class SlowConsumer(threading.Thread):
    """A confluent-kafka consumer in GROUP reading TOPIC from its committed offsets,
    committing every `step` messages and pausing a little after each commit so that the
    console's 2-s polls see the lag fall in steps; it stays in the group until `stop` is
    set, then closes (leaves the group)."""

    def __init__(self, bootstrap: str, total: int, step: int = 25):
        super().__init__(daemon=True)
        self.bootstrap, self.total, self.step = bootstrap, total, step
        self.stop = threading.Event()
        self.consumed = 0
        self.error: BaseException | None = None

    def run(self):
        try:
            c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": GROUP, "client.id": "console-test",
                          "enable.auto.commit": False, "auto.offset.reset": "earliest", "fetch.wait.max.ms": 100})
            c.subscribe([TOPIC])
            try:
                while not self.stop.is_set():
                    m = c.poll(0.1)
                    if m is None or m.error():
                        continue
                    self.consumed += 1
                    if self.consumed % self.step == 0 or self.consumed == self.total:
                        c.commit(asynchronous=False)
                        time.sleep(0.5)  # pacing only: the page's polls see the lag fall in steps
            finally:
                c.close()
        except BaseException as e:  # reported by the test
            self.error = e


# ---------------------------------------------------------------- tests


def test_admin_console(broker_factory, browser):
    d = browser
    b, base = start_broker(broker_factory)
    a = admin(b.bootstrap)  # one client, kept alive while its futures run
    total = BULK + 1

    d.get(base + "/")
    shown(d, "#login-form")
    screenshot(d, "login")
    log_in(d, "alice", "not-her-password")
    assert "Login failed" in shown(d, "#login-error").text
    log_in(d, "alice", "wonderland")
    shown(d, "#shell")
    assert shown(d, "#user-name").text == "alice" and shown(d, "#user-role").text == "admin"
    if b.cluster_id:
        wait(d, lambda drv: css(drv, "#cluster-id")[0].text == b.cluster_id, "the cluster id in the header")
    cookie = next(c for c in d.get_cookies() if c["httpOnly"])
    assert cookie.get("sameSite") == "Strict" and cookie["value"] not in d.execute_script("return document.cookie")

    # Overview.
    shown(d, "[data-testid=brokers-table] [data-testid=broker-row]")
    assert number(d, "[data-testid=offline-count]") == 0

    # Create a topic in the form.
    go(d, base, "#/topics")
    click(d, "#create-topic-open")
    fill(d, "#ct-name", TOPIC)
    fill(d, "#ct-partitions", "3")
    fill(d, "#ct-configs", "retention.ms=86400000")
    click(d, "#ct-submit")
    wait(d, lambda drv: len(css(drv, "[data-testid=partition-row]")) == 3, "the new topic's 3 partitions")
    assert shown(d, "[data-testid=topic-name]").text == TOPIC
    assert len(topic_partitions(b.bootstrap, TOPIC)) == 3, "Kafka clients see the topic"

    # Produce from the form: partition 1, a key, a JSON value and a header.
    click(d, "[data-testid=tab-produce]")
    Select(shown(d, "#pr-partition")).select_by_value("1")
    fill(d, "#pr-key", "order-1")
    fill(d, "#pr-value", '{"id": 1, "item": "book", "tags": ["new"]}')
    click(d, "#pr-add-header")
    fill(d, "[data-testid=header-key]", "source")
    fill(d, "[data-testid=header-value]", "console")
    click(d, "#pr-submit")
    shown(d, "[data-testid=produced-offset]")
    assert shown(d, "[data-testid=produced-partition]").text == "1"
    assert shown(d, "[data-testid=produced-offset]").text == "0"
    screenshot(d, "produce")

    # Browse it: pretty JSON, the key, the header.
    click(d, "[data-testid=produced-link]")
    card = shown(d, "[data-testid=message][data-partition='1'][data-offset='0']")
    pretty = json.dumps({"id": 1, "item": "book", "tags": ["new"]}, indent=2)
    assert card.find_element(By.CSS_SELECTOR, "[data-testid=message-value]").text == pretty
    assert card.find_element(By.CSS_SELECTOR, "[data-testid=message-key]").text == "order-1"
    assert card.find_element(By.CSS_SELECTOR, "[data-testid=message-header]").text == "source console"

    # The bulk from a Kafka client, then a search that finds only the form's message.
    producer = confluent_producer(b.bootstrap, acks="all")
    produce_confluent(producer, TOPIC, [{"key": f"k{i}".encode(), "value": json.dumps({"n": i}).encode(),
                                        "partition": i % 3} for i in range(BULK)])
    go(d, base, f"#/topics/{TOPIC}/messages")
    wait(d, lambda drv: len(css(drv, "[data-testid=message]")) == 50, "the newest 50 messages")
    fill(d, "#mb-q", "book")
    click(d, "#mb-submit")
    wait(d, lambda drv: len(css(drv, "[data-testid=message]")) == 1
         and "book" in css(drv, "[data-testid=message-value]")[0].text, "the search to find one message")
    screenshot(d, "messages")

    # From a date and time (a minute ago), oldest first: partition 1 starts at the form's message.
    Select(shown(d, "#mb-partition")).select_by_value("1")
    Select(shown(d, "#mb-order")).select_by_value("oldest")
    shown(d, "#mb-q").clear()
    fill(d, "#mb-limit", "5")
    d.execute_script("arguments[0].value = localInput(Date.now() - 60000)", shown(d, "#mb-time"))
    click(d, "#mb-submit")
    wait(d, lambda drv: "timestamp=" in drv.execute_script("return location.hash")
         and [e.get_attribute("data-offset") for e in css(drv, "[data-testid=message]")] == ["0", "1", "2", "3", "4"],
         "partition 1's first five messages from a minute ago")

    # Text that looks like HTML stays text; bytes that are not UTF-8 show as hex.
    create_topic(b.bootstrap, "console-misc", 1)
    produce_confluent(producer, "console-misc", [
        {"key": b'<b id="xss-key">k</b>', "value": b'<img src=x onerror="window.__xss=1">'},
        {"key": b"bin", "value": bytes([0, 1, 0xFE, 0xFF]), "headers": [("h", b"\xff\x00")]},
    ])
    go(d, base, "#/topics/console-misc/messages?order=oldest")
    wait(d, lambda drv: len(css(drv, "[data-testid=message]")) == 2, "the two misc messages")
    values = [e.text for e in css(d, "[data-testid=message-value]")]
    assert values[0] == '<img src=x onerror="window.__xss=1">'
    assert values[1].startswith("00000000  00 01 fe ff") and values[1].endswith("|....|")
    assert css(d, "[data-testid=message-key]")[0].text == '<b id="xss-key">k</b>'
    assert not css(d, "#xss-key") and d.execute_script("return window.__xss") is None

    # Topics list with its search box.
    go(d, base, "#/topics")
    fill(d, "#topic-search", "console")
    wait(d, lambda drv: len(css(drv, "[data-testid=topic-row]")) == 2, "two topics matching the search")
    wait(d, lambda drv: css(drv, f"[data-topic='{TOPIC}'] td")[4].text == f"{total:,}", "the topic's message count")
    screenshot(d, "topics")
    go(d, base, f"#/topics/{TOPIC}")
    shown(d, "[data-testid=partition-row]")
    screenshot(d, "topic")

    # Change a config in place: Kafka clients see the override.
    click(d, "[data-testid=tab-configs]")
    row = "[data-config='retention.ms']"
    shown(d, f"{row} [data-testid=config-edit]").click()
    fill(d, f"{row} [data-testid=config-input]", "3600000")
    click(d, f"{row} [data-testid=config-save]")
    wait(d, lambda drv: "3600000" in css(drv, row)[0].text and "DYNAMIC_TOPIC_CONFIG" in css(drv, row)[0].text,
         "retention.ms changed")
    described = a.describe_configs([ConfigResource(ResourceType.TOPIC, TOPIC)])
    assert next(iter(described.values())).result(15)["retention.ms"].value == "3600000"

    # The group starts at offset 0 everywhere (lag = every message), then a consumer runs.
    committer = Consumer({"bootstrap.servers": b.bootstrap, "group.id": GROUP, "enable.auto.commit": False})
    committer.commit(offsets=[TopicPartition(TOPIC, p, 0) for p in range(3)], asynchronous=False)
    committer.close()
    go(d, base, f"#/groups/{GROUP}")
    wait(d, lambda drv: number(drv, "[data-testid=group-lag]") == total, f"the group's lag of {total}")
    consumer = SlowConsumer(b.bootstrap, total)
    consumer.start()
    try:
        seen = [total]

        def lag_falls_to_zero(drv):
            lag = number(drv, "[data-testid=group-lag]")
            if seen[-1] != lag:
                seen.append(lag)
            return lag == 0
        wait(d, lag_falls_to_zero, "the lag to fall to 0 while the consumer runs", timeout=45)
        assert consumer.error is None, consumer.error
        assert seen == sorted(seen, reverse=True) and len(seen) >= 3, f"lag seen on the page: {seen}"
        wait(d, lambda drv: "console-test" in css(drv, "#group-members")[0].text, "the consumer among the members")
        assert d.execute_script(f"return lagHistory.get({json.dumps(GROUP)}).length") >= 3
        screenshot(d, "group")
    finally:
        consumer.stop.set()
        consumer.join(20)
    assert consumer.error is None, consumer.error
    assert consumer.consumed == total

    # The group is empty now: reset it to the earliest offsets with a preview.
    shown(d, "[data-testid=no-members]", timeout=20)
    Select(shown(d, "#rs-strategy")).select_by_value("to_earliest")
    assert not shown(d, "#reset-apply").is_enabled(), "apply comes after a preview"
    click(d, "#reset-preview")
    plan = shown(d, "[data-testid=reset-plan]")
    assert plan.get_attribute("data-executed") == "false"
    rows = [r.text.split() for r in plan.find_elements(By.CSS_SELECTOR, "tbody tr")]
    assert sorted((r[0], r[1], r[3]) for r in rows) == [(TOPIC, str(p), "0") for p in range(3)], rows
    assert number(d, "[data-testid=group-lag]") == 0, "a preview changes nothing"
    d.execute_script("arguments[0].scrollIntoView()", shown(d, "#reset-card"))
    screenshot(d, "reset")
    wait(d, lambda drv: css(drv, "#reset-apply")[0].is_enabled(), "apply to be enabled")
    click(d, "#reset-apply")
    wait(d, lambda drv: css(drv, "[data-testid=reset-plan]")[0].get_attribute("data-executed") == "true", "the reset")
    wait(d, lambda drv: number(drv, "[data-testid=group-lag]") == total, "the lag back at the full count")
    committed = a.list_consumer_group_offsets([ConsumerGroupTopicPartitions(GROUP)])[GROUP].result(15)
    assert sorted(tp.offset for tp in committed.topic_partitions) == [0, 0, 0]

    go(d, base, "#/")
    topics = len(a.list_topics(timeout=10).topics)  # with __consumer_offsets
    wait(d, lambda drv: number(drv, "[data-testid=topic-count]") == topics, f"{topics} topics in the overview")
    screenshot(d, "overview")

    # Groups list.
    go(d, base, "#/groups")
    wait(d, lambda drv: number(drv, f"[data-group='{GROUP}'] [data-testid=lag]") == total, "the group's lag in the list")
    screenshot(d, "groups")

    # Broker configs.
    go(d, base, "#/brokers")
    shown(d, "#broker-configs [data-testid=configs-table]")
    screenshot(d, "brokers")

    # A cookie-authenticated change without the console's header is refused (CSRF).
    status = d.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0], {method: 'DELETE'}).then(r => done(r.status), e => done(String(e)));",
        "/api/v1/topics/console-misc")
    assert status in (401, 403), status
    assert "console-misc" in admin(b.bootstrap).list_topics(timeout=10).topics

    # Log out: back to the login form, and the session is gone.
    click(d, "[data-testid=logout]")
    shown(d, "#login-form")
    assert fetch_status(d, "GET", "/api/v1/session") == 401


def test_viewer_is_read_only(broker_factory, browser):
    d = browser
    b, base = start_broker(broker_factory)
    create_topic(b.bootstrap, TOPIC, 2)

    d.get(base + "/#/topics")
    log_in(d, "bob", "builder")
    shown(d, f"[data-topic='{TOPIC}']")
    assert shown(d, "#user-role").text == "viewer"
    assert not css(d, "[data-testid=delete-topic]") and not css(d, "#create-topic-open")
    go(d, base, f"#/topics/{TOPIC}")
    shown(d, "[data-testid=partition-row]")
    assert not css(d, "[data-testid=delete-topic]")
    click(d, "[data-testid=tab-produce]")
    shown(d, "[data-testid=produce-readonly]")
    assert not css(d, "#produce-form")
    click(d, "[data-testid=tab-configs]")
    shown(d, "[data-config='retention.ms']")
    assert not css(d, "[data-testid=config-edit]") and not css(d, "#config-add")

    # The server refuses what the page does not offer.
    assert fetch_status(d, "DELETE", f"/api/v1/topics/{TOPIC}") == 403
    go(d, base, "#/topics")
    shown(d, f"[data-topic='{TOPIC}']")
    assert TOPIC in admin(b.bootstrap).list_topics(timeout=10).topics

