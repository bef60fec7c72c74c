"""The bloblang that makes Benthos do Triggerline's work in the peer benchmarks.

- `SLACK_VERIFICATION`: Slack's v0 signature check (HMAC-SHA256 over `v0:{timestamp}:{body}`
  with the signing secret, hex, compared with `X-Slack-Signature`) and the same ±300 s window on
  `X-Slack-Request-Timestamp` that ingest applies.
- `routing_mapping`: what a processor does to one raw Slack event, as far as bloblang can: the
  same flat fields (`kinds/slack.py`), each trigger's event-type allow-list and CEL filter
  translated by hand (`FILTERS`), the same correlation id as the record key, and a routed
  CloudEvent of the same shape. A filter that fails (a string function on a missing text) does
  not route, as in Triggerline. What it cannot do is deduplicate or commit exactly once.

bloblang's `&&` and `||` stop at the left operand; CEL's are commutative over errors
(`error || true` is true). No filter of the workload has a left operand that can fail where the
right one decides, so the routed events are the same; the benchmark checks the count.
"""

from __future__ import annotations

from schemas.triggers import TriggerConfig

# The workload's filters (benchmarks/processor_workload.py), each with its bloblang over `$e`,
# the normalized fields. `in` is `contains` on the list, `size` is `length`, `matches` is
# `re_match` (both RE2), `startsWith`/`endsWith` are `has_prefix`/`has_suffix`, `has(x.f)` is
# `exists` (the fields always hold every key, null or not).
FILTERS: tuple[tuple[str, str], ...] = (
    ('event.text.contains("deploy")', '$e.text.contains("deploy")'),
    (
        'event.channel_id in ["C01", "C02", "C03"] && event.bot_id == null',
        '["C01", "C02", "C03"].contains($e.channel_id) && $e.bot_id == null',
    ),
    (
        'event.user_id != "U0BOT" && size(event.text) > 3',
        '$e.user_id != "U0BOT" && $e.text.length() > 3',
    ),
    (
        'event.text.matches("(?i)incident|outage|sev[12]")',
        '$e.text.re_match("(?i)incident|outage|sev[12]")',
    ),
    (
        "event.subtype == null && event.thread_id == null",
        "$e.subtype == null && $e.thread_id == null",
    ),
    (
        'event.thread_id != null && event.channel_id.startsWith("C0")',
        '$e.thread_id != null && $e.channel_id.has_prefix("C0")',
    ),
    (
        'event.event_type == "app_mention" || event.text.contains("@oncall")',
        '$e.event_type == "app_mention" || $e.text.contains("@oncall")',
    ),
    (
        'event.team_id == "T01" && event.channel_id != "C09"',
        '$e.team_id == "T01" && $e.channel_id != "C09"',
    ),
    (
        'event.text.startsWith("!") && event.user_id.startsWith("U")',
        '$e.text.has_prefix("!") && $e.user_id.has_prefix("U")',
    ),
    (
        'event.event_time > 1700000000 && event.text.contains("release")',
        '$e.event_time > 1700000000 && $e.text.contains("release")',
    ),
    (
        'has(event.text) && event.text != "" && event.bot_id == null',
        '$e.exists("text") && $e.text != "" && $e.bot_id == null',
    ),
    (
        'event.channel_id in ["C04", "C05"] || event.text.endsWith("?")',
        '["C04", "C05"].contains($e.channel_id) || $e.text.has_suffix("?")',
    ),
    (
        'event.user_id in ["U01", "U02", "U03", "U04"]',
        '["U01", "U02", "U03", "U04"].contains($e.user_id)',
    ),
    (
        'event.text.contains("error") && !event.text.contains("test")',
        '$e.text.contains("error") && !$e.text.contains("test")',
    ),
    (
        'event.event_type == "reaction_added" || event.subtype == null',
        '$e.event_type == "reaction_added" || $e.subtype == null',
    ),
    (
        'event.app_id == "A01" && event.event_type != "member_joined_channel"',
        '$e.app_id == "A01" && $e.event_type != "member_joined_channel"',
    ),
    (
        'size(event.text) < 2000 && event.channel_id != "C00"',
        '$e.text.length() < 2000 && $e.channel_id != "C00"',
    ),
    (
        'event.text.contains("ticket") || event.text.contains("jira")',
        '$e.text.contains("ticket") || $e.text.contains("jira")',
    ),
    (
        'event.ts != null && event.channel_id.endsWith("1")',
        '$e.ts != null && $e.channel_id.has_suffix("1")',
    ),
    (
        'event.bot_id == null && (event.text.contains("help") || event.text.contains("?"))',
        '$e.bot_id == null && ($e.text.contains("help") || $e.text.contains("?"))',
    ),
)
BLOBLANG_OF = dict(FILTERS)

SLACK_SECRET_VARIABLE = "SLACK_SIGNING_SECRET"
MAX_CLOCK_SKEW_S = 300

# A `mapping` that passes the body through byte for byte and sets `slack_verified` to "yes" or
# "no". Not a `mutation`: that parses a JSON body before it runs, and `content()` then gives the
# body re-serialized (keys sorted), not the bytes that were signed.
SLACK_VERIFICATION = f"""
root = content()
let timestamp = metadata("X-Slack-Request-Timestamp").or("")
let presented = metadata("X-Slack-Signature").or("")
let fresh = ($timestamp.number().catch(0) - timestamp_unix()).abs() <= {MAX_CLOCK_SKEW_S}
let expected = "v0=" + ("v0:" + $timestamp + ":" + content().string()).hash(
  "hmac_sha256", env("{SLACK_SECRET_VARIABLE}")
).encode("hex")
meta slack_verified = if $fresh && $presented == $expected {{ "yes" }} else {{ "no" }}
"""

# Slack envelopes that carry an event (kinds/slack.py ROUTED_ENVELOPES).
ROUTED_ENVELOPES = ("event_callback", "block_actions", "view_submission", "shortcut")

# The flat fields of kinds/slack.py `slack_event`: some events carry an object where others
# carry an id (team_join's user, channel_created's channel).
_NORMALIZE = """
map id_of {
  root = match {
    this.type() == "object" => this.id
    this.type() == "string" => this
    _ => null
  }
}
let raw = this
let envelope = $raw.body.parse_json()
let event = if $envelope.event.type() == "object" { $envelope.event } else { {} }
let e = {
  "envelope_type": $envelope.type.or("").string(),
  "event_type": $event.type,
  "subtype": $event.subtype,
  "team_id": $envelope.team_id.or($envelope.team).apply("id_of"),
  "channel_id": $event.channel.or($envelope.channel).apply("id_of"),
  "thread_id": $event.thread_ts,
  "user_id": $event.user.or($envelope.user).apply("id_of"),
  "bot_id": $event.bot_id,
  "app_id": $envelope.api_app_id,
  "text": $event.text,
  "ts": $event.ts,
  "event_id": $envelope.event_id,
  "event_time": if $envelope.event_time.type() == "number" { $envelope.event_time } else { null }
}
let event_type = $e.event_type.or($e.envelope_type)
let correlation = if $e.channel_id != null && $e.thread_id != null {
  $e.channel_id + ":" + $e.thread_id
} else if $e.channel_id != null && $e.ts != null && $e.event_type == "message" {
  $e.channel_id + ":" + $e.ts
} else {
  $e.channel_id.or($e.team_id).or("unknown")
}
"""

# The routed CloudEvent, as schemas/records.py RoutedEvent encodes it.
_ROUTED = """
if $routed {
  root = {
    "id": $e.event_id.or($raw.id),
    "source": "/triggers/" + $raw.trigger_id,
    "type": "slack." + $event_type,
    "subject": $correlation,
    "time": if $e.event_time != null {
      $e.event_time.ts_format("2006-01-02T15:04:05Z07:00", "UTC")
    } else { $raw.received_at },
    "data": {"slack": $e, "envelope": $envelope},
    "triggerid": $raw.trigger_id,
    "projectid": $raw.project_id,
    "targetkind": "noop",
    "targetref": "",
    "receivedat": $raw.received_at,
    "replay": false,
    "destination": "default",
    "specversion": "1.0",
    "datacontenttype": "application/json",
    "v": 1
  }
  meta correlation = $correlation
} else {
  root = deleted()
}
"""


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def trigger_rule(config: TriggerConfig) -> str:
    """One trigger's rules in bloblang: its event-type allow-list, then its filter."""
    types = config.config.get("event_types")
    source = config.config.get("filter")
    parts = []
    if types:
        parts.append(f"[{', '.join(_quoted(t) for t in types)}].contains($event_type)")
    if source:
        parts.append(f"({BLOBLANG_OF[source]})")
    rule = " && ".join(parts) or "true"
    return f"({rule}).catch(false)"


def routing_mapping(configs: list[TriggerConfig]) -> str:
    """The mapping a Benthos pipeline runs per raw event: normalize, the raw event's trigger's
    rules (a `match` on its id), and the routed record keyed by the correlation id (metadata
    `correlation`); a skipped event is deleted."""
    cases = "".join(
        f"  {_quoted(c.trigger_id)} => {trigger_rule(c)}\n" for c in configs if c.active
    )
    envelopes = ", ".join(_quoted(t) for t in ROUTED_ENVELOPES)
    decision = (
        f"let routed = [{envelopes}].contains($e.envelope_type) && (match $raw.trigger_id {{\n"
        f"{cases}  _ => false\n}})\n"
    )
    return _NORMALIZE + decision + _ROUTED
