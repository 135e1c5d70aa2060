//! One self-contained HTML page for one or more traces: a header (name, id, group, status,
//! duration, tokens, cost), a waterfall on a time axis with nested bars coloured by kind and
//! status, collapsible rows, and a detail pane (attributes, events, input, output, error) for
//! the selected span.
//!
//! Nothing is fetched: the CSS and the script are inline, there are no fonts, images or links.
//! The traces travel as JSON in a `<script type="application/json">` block (with `<`, `>`, `&`
//! and the JavaScript line separators escaped, so no name can close the block), and the script
//! builds the page with DOM text nodes only, so a span named `<script>…` shows as text. Rows are
//! virtual: only the ones in view exist in the DOM, so 10,000 spans scroll smoothly.
//!
//! When it has rendered, the page sets `data-rendered="N spans"` on `<body>`; a script error
//! sets `data-errors` and shows up in the `#errors` box (the headless-browser test reads both).

use serde_json::{Value, json};

use crate::trace::{Span, TraceDoc};

pub fn render(docs: &[TraceDoc]) -> String {
    let data = json!({ "traces": docs.iter().map(trace_json).collect::<Vec<_>>() });
    let title = match docs {
        [one] => format!("{} — agentrace", one.trace.name),
        _ => format!("{} traces — agentrace", docs.len()),
    };
    // Split, not replaced: a trace name may well contain the other placeholder.
    let (head, rest) = TEMPLATE.split_once("__TITLE__").unwrap_or((TEMPLATE, ""));
    let (middle, tail) = rest.split_once("__DATA__").unwrap_or((rest, ""));
    let data = script_json(&data);
    let mut page = String::with_capacity(TEMPLATE.len() + title.len() + data.len());
    page.push_str(head);
    page.push_str(&escape_html(&title));
    page.push_str(middle);
    page.push_str(&data);
    page.push_str(tail);
    page
}

fn trace_json(doc: &TraceDoc) -> Value {
    let t = &doc.trace;
    let index: std::collections::HashMap<_, _> = doc
        .spans
        .iter()
        .enumerate()
        .map(|(i, s)| (s.span_id, i))
        .collect();
    let spans: Vec<Value> = doc
        .spans
        .iter()
        .map(|s| span_json(s, s.parent_id.and_then(|p| index.get(&p).copied())))
        .collect();
    json!({
        "id": t.trace_id.to_string(),
        "name": t.name,
        "workflow": t.workflow,
        "group_id": t.group_id,
        "metadata": t.metadata,
        "status": t.status.as_str(),
        "start": t.started_at.micros(),
        "end": t.ended_at.map(|e| e.micros()),
        "usage": t.usage,
        "cost_usd": t.cost_usd,
        "error": t.error,
        "spans": spans,
    })
}

fn span_json(s: &Span, parent: Option<usize>) -> Value {
    json!({
        "id": s.span_id.to_string(),
        "parent": parent,
        "kind": s.kind.as_str(),
        "name": s.name,
        "status": s.status.as_str(),
        "start": s.started_at.micros(),
        "end": s.ended_at.map(|e| e.micros()),
        "attributes": s.attributes,
        "events": s.events.iter().map(|e| json!({
            "name": e.name,
            "time": e.time.micros(),
            "attributes": e.attributes,
        })).collect::<Vec<_>>(),
        "error": s.error,
    })
}

/// JSON that can sit inside a `<script>` element: nothing in it can end the element or start a
/// comment, and it still parses to the same value.
fn script_json(v: &Value) -> String {
    let text = serde_json::to_string(v).unwrap_or_else(|_| "{\"traces\":[]}".into());
    let mut out = String::with_capacity(text.len() + text.len() / 16);
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const TEMPLATE: &str = r##"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>__TITLE__</title>
<script>
(function () {
  'use strict';
  var count = 0;
  function report(message) {
    count += 1;
    document.documentElement.setAttribute('data-errors', String(count));
    var show = function () {
      document.body.setAttribute('data-errors', String(count));
      var box = document.getElementById('errors');
      if (!box) { return; }
      box.hidden = false;
      var line = document.createElement('div');
      line.textContent = message;
      box.appendChild(line);
    };
    if (document.body) { show(); } else { document.addEventListener('DOMContentLoaded', show); }
  }
  window.addEventListener('error', function (e) {
    report('error: ' + e.message + (e.lineno ? ' (line ' + e.lineno + ')' : ''));
  });
  window.addEventListener('unhandledrejection', function (e) {
    report('unhandled rejection: ' + String(e.reason));
  });
  window.agentraceReport = report;
})();
</script>
<style>
:root {
  --bg: #fff; --fg: #1d2430; --muted: #6b7480; --line: #e3e6ea; --hover: #f3f6fa; --sel: #dde9fb;
  --custom: #8e7cc3; --agent: #3d85c6; --generation: #4f9a3a; --function: #e08a1e;
  --handoff: #c2559a; --command: #3f8f9a; --error: #d0312d; --label: 38%;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
  font-size: 13px; color: var(--fg); background: var(--bg);
}
@media (prefers-color-scheme: dark) {
  :root { --bg: #16191d; --fg: #dfe3e8; --muted: #8b939c; --line: #2a2f36; --hover: #1f242a; --sel: #243449; }
}
* { box-sizing: border-box; }
[hidden] { display: none !important; }
html, body { margin: 0; height: 100%; }
body { display: flex; flex-direction: column; }
code, pre, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; }
#errors { background: #fde8e8; color: #8a1c1c; padding: 6px 12px; border-bottom: 1px solid #f3b4b4; }
nav#tabs { display: flex; gap: 4px; padding: 6px 12px 0; border-bottom: 1px solid var(--line); flex-wrap: wrap; }
nav#tabs button { border: 1px solid var(--line); border-bottom: none; background: transparent; color: var(--fg);
  padding: 5px 10px; border-radius: 6px 6px 0 0; cursor: pointer; font: inherit; }
nav#tabs button.active { background: var(--sel); font-weight: 600; }
header { padding: 10px 12px; border-bottom: 1px solid var(--line); }
header h1 { font-size: 17px; margin: 0 0 6px; overflow-wrap: anywhere; }
header dl { display: flex; flex-wrap: wrap; gap: 4px 18px; margin: 0; }
header dl div { display: flex; gap: 6px; }
header dt { color: var(--muted); }
header dd { margin: 0; overflow-wrap: anywhere; }
.status { display: inline-block; padding: 0 6px; border-radius: 8px; font-size: 11px; line-height: 16px; color: #fff; background: #777; }
.status.ok { background: #3a8f3a; } .status.error { background: var(--error); }
.status.running { background: #b8860b; } .status.cancelled { background: #7a6f63; } .status.skipped { background: #999; }
main { flex: 1; display: flex; min-height: 0; }
#waterfall { flex: 1; display: flex; flex-direction: column; min-width: 0; border-right: 1px solid var(--line); }
#toolbar { display: flex; gap: 6px; padding: 4px 8px; border-bottom: 1px solid var(--line); align-items: center; }
#toolbar button { font: inherit; font-size: 12px; padding: 2px 8px; cursor: pointer; background: transparent; color: var(--fg);
  border: 1px solid var(--line); border-radius: 4px; }
#legend { display: flex; gap: 10px; margin-left: auto; color: var(--muted); font-size: 12px; flex-wrap: wrap; }
#legend i { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 3px; vertical-align: -1px; }
#axis { position: relative; height: 22px; border-bottom: 1px solid var(--line); margin-left: var(--label); }
#axis span { position: absolute; top: 4px; font-size: 11px; color: var(--muted); transform: translateX(-50%); white-space: nowrap; }
#axis span:first-child { transform: none; }
#viewport { flex: 1; overflow: auto; position: relative; outline: none; }
#spacer { position: relative; }
.row { position: absolute; left: 0; right: 0; height: 22px; display: flex; cursor: pointer; border-bottom: 1px solid transparent; }
.row:hover { background: var(--hover); }
.row.selected { background: var(--sel); }
.label { width: var(--label); flex: none; display: flex; align-items: center; gap: 4px; overflow: hidden; white-space: nowrap; padding-right: 6px; }
.toggle { width: 14px; flex: none; text-align: center; color: var(--muted); user-select: none; }
.kind { flex: none; font-size: 10px; padding: 0 4px; border-radius: 3px; color: #fff; line-height: 15px; }
.name { overflow: hidden; text-overflow: ellipsis; }
.track { position: relative; flex: 1; min-width: 0; }
.track .grid { position: absolute; top: 0; bottom: 0; width: 1px; background: var(--line); }
.bar { position: absolute; top: 4px; height: 14px; min-width: 2px; border-radius: 3px; opacity: .9; }
.bar.error { background-image: repeating-linear-gradient(135deg, transparent 0 5px, rgba(255,255,255,.35) 5px 8px); outline: 2px solid var(--error); }
.bar.skipped { opacity: .35; background-image: repeating-linear-gradient(135deg, transparent 0 3px, rgba(255,255,255,.6) 3px 6px); }
.bar.cancelled { opacity: .5; outline: 1px dashed var(--muted); }
.bar.running { opacity: .55; outline: 1px dashed var(--fg); }
.dur { position: absolute; top: 3px; font-size: 11px; color: var(--muted); white-space: nowrap; }
.tick { position: absolute; top: 2px; width: 7px; height: 7px; margin-left: -3px; transform: rotate(45deg); background: var(--fg); opacity: .75; }
.k-custom { background: var(--custom); } .k-agent { background: var(--agent); } .k-generation { background: var(--generation); }
.k-function { background: var(--function); } .k-handoff { background: var(--handoff); } .k-command { background: var(--command); }
#detail { width: 40%; max-width: 640px; min-width: 300px; overflow: auto; padding: 10px 12px; }
#detail h2 { font-size: 15px; margin: 0 0 8px; overflow-wrap: anywhere; }
#detail h3 { font-size: 12px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); margin: 14px 0 4px; }
#detail table { border-collapse: collapse; width: 100%; }
#detail td { border-top: 1px solid var(--line); padding: 3px 4px; vertical-align: top; overflow-wrap: anywhere; }
#detail td:first-child { color: var(--muted); width: 30%; white-space: nowrap; }
#detail pre { margin: 0; white-space: pre-wrap; overflow-wrap: anywhere; }
.msg { border-left: 3px solid var(--line); padding: 2px 8px; margin: 4px 0; }
.msg b { display: block; font-size: 11px; color: var(--muted); }
.event { border-top: 1px solid var(--line); padding: 4px 0; }
.error-box { background: #fde8e8; color: #8a1c1c; padding: 6px 8px; border-radius: 4px; white-space: pre-wrap; overflow-wrap: anywhere; }
.empty { color: var(--muted); padding: 12px; }
</style>
</head>
<body>
<div id="errors" hidden></div>
<nav id="tabs" hidden></nav>
<header id="header"></header>
<main>
  <section id="waterfall">
    <div id="toolbar">
      <button type="button" id="expand">Expand all</button>
      <button type="button" id="collapse">Collapse all</button>
      <span id="legend"></span>
    </div>
    <div id="axis"></div>
    <div id="viewport" tabindex="0"><div id="spacer"></div></div>
  </section>
  <aside id="detail"></aside>
</main>
<script type="application/json" id="trace-data">__DATA__</script>
<script>
(function () {
  'use strict';
  var ROW = 22, OVERSCAN = 12;
  var KINDS = ['custom', 'agent', 'generation', 'function', 'handoff', 'command'];
  var data = JSON.parse(document.getElementById('trace-data').textContent);
  var traces = data.traces || [];
  var $ = function (id) { return document.getElementById(id); };
  var viewport = $('viewport'), spacer = $('spacer');
  var state = { trace: 0, rows: [], selected: -1, collapsed: null, drawn: null };

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }
  function fmtMs(ms) {
    if (ms === null || ms === undefined || isNaN(ms)) { return '—'; }
    if (ms < 1) { return Math.round(ms * 1000) + ' µs'; }
    if (ms < 1000) { return (ms < 10 ? ms.toFixed(2) : ms.toFixed(1)) + ' ms'; }
    if (ms < 60000) { return (ms / 1000).toFixed(2) + ' s'; }
    var m = Math.floor(ms / 60000);
    return m + ' min ' + ((ms - m * 60000) / 1000).toFixed(1) + ' s';
  }
  function iso(us) { return new Date(us / 1000).toISOString(); }
  function pretty(v) { return typeof v === 'string' ? v : JSON.stringify(v, null, 2); }

  // Per trace: children, depth, time range; computed once.
  traces.forEach(function (t) {
    var n = t.spans.length, i;
    t.children = []; t.roots = [];
    for (i = 0; i < n; i++) { t.children.push([]); }
    for (i = 0; i < n; i++) {
      var p = t.spans[i].parent;
      if (p === null || p === undefined || p < 0 || p >= n) { t.roots.push(i); } else { t.children[p].push(i); }
    }
    var byStart = function (a, b) { return t.spans[a].start - t.spans[b].start || a - b; };
    t.roots.sort(byStart);
    t.children.forEach(function (c) { c.sort(byStart); });
    var lo = t.start, hi = t.end === null ? t.start : t.end;
    t.spans.forEach(function (s) {
      lo = Math.min(lo, s.start);
      hi = Math.max(hi, s.end === null ? s.start : s.end);
      s.events.forEach(function (e) { hi = Math.max(hi, e.time); });
    });
    t.lo = lo; t.hi = Math.max(hi, lo + 1);
    t.depth = new Array(n);
    var stack = t.roots.map(function (r) { return [r, 0]; }).reverse();
    while (stack.length) {
      var top = stack.pop();
      t.depth[top[0]] = top[1];
      var kids = t.children[top[0]];
      for (i = kids.length - 1; i >= 0; i--) { stack.push([kids[i], top[1] + 1]); }
    }
    t.collapsed = {};
  });

  // The visible rows of the current trace, in tree order, skipping collapsed subtrees.
  function flatten() {
    var t = traces[state.trace], rows = [];
    if (!t) { state.rows = rows; return; }
    var stack = t.roots.slice().reverse();
    while (stack.length) {
      var i = stack.pop();
      rows.push(i);
      if (!t.collapsed[i]) {
        var kids = t.children[i];
        for (var k = kids.length - 1; k >= 0; k--) { stack.push(kids[k]); }
      }
    }
    state.rows = rows;
    spacer.style.height = (rows.length * ROW) + 'px';
  }

  function pct(t, us) { return ((us - t.lo) / (t.hi - t.lo)) * 100; }

  function drawRows(force) {
    var t = traces[state.trace];
    if (!t) { return; }
    var h = viewport.clientHeight || window.innerHeight || 800;
    var first = Math.max(0, Math.floor(viewport.scrollTop / ROW) - OVERSCAN);
    var last = Math.min(state.rows.length, Math.ceil((viewport.scrollTop + h) / ROW) + OVERSCAN);
    var key = first + ':' + last + ':' + state.selected;
    if (!force && state.drawn === key) { return; }
    state.drawn = key;
    var frag = document.createDocumentFragment();
    for (var r = first; r < last; r++) { frag.appendChild(row(t, state.rows[r], r)); }
    spacer.replaceChildren(frag);
  }

  function row(t, i, r) {
    var s = t.spans[i];
    var div = el('div', 'row' + (i === state.selected ? ' selected' : ''));
    div.style.top = (r * ROW) + 'px';
    div.setAttribute('data-span', String(i));
    div.title = s.kind + ' ' + s.name;
    var label = el('div', 'label');
    label.style.paddingLeft = (4 + t.depth[i] * 14) + 'px';
    var toggle = el('span', 'toggle', t.children[i].length ? (t.collapsed[i] ? '▸' : '▾') : '');
    if (t.children[i].length) { toggle.setAttribute('data-toggle', String(i)); }
    label.appendChild(toggle);
    label.appendChild(el('span', 'kind k-' + s.kind, s.kind));
    label.appendChild(el('span', 'name', s.name));
    div.appendChild(label);
    var track = el('div', 'track');
    var end = s.end === null ? t.hi : s.end;
    var left = pct(t, s.start), width = Math.max(pct(t, end) - left, 0);
    var bar = el('div', 'bar k-' + s.kind + ' ' + s.status);
    bar.style.left = left + '%';
    bar.style.width = width + '%';
    track.appendChild(bar);
    s.events.forEach(function (e) {
      var tick = el('div', 'tick');
      tick.style.left = pct(t, e.time) + '%';
      tick.title = e.name;
      track.appendChild(tick);
    });
    var dur = el('span', 'dur', fmtMs(s.end === null ? null : (s.end - s.start) / 1000) + (s.status !== 'ok' ? ' · ' + s.status : ''));
    if (left + width > 80) { dur.style.right = (100 - left + 1) + '%'; } else { dur.style.left = (left + width + 0.5) + '%'; }
    track.appendChild(dur);
    div.appendChild(track);
    return div;
  }

  function axis() {
    var t = traces[state.trace], box = $('axis');
    box.replaceChildren();
    if (!t) { return; }
    var total = (t.hi - t.lo) / 1000;
    for (var k = 0; k <= 4; k++) {
      var label = el('span', null, fmtMs(total * k / 4));
      label.style.left = (k * 25) + '%';
      if (k === 4) { label.style.transform = 'translateX(-100%)'; }
      box.appendChild(label);
    }
  }

  function header() {
    var t = traces[state.trace], box = $('header');
    box.replaceChildren();
    if (!t) { box.appendChild(el('div', 'empty', 'No trace.')); return; }
    box.appendChild(el('h1', null, t.name));
    var dl = el('dl');
    function item(k, v) {
      var d = el('div'); d.appendChild(el('dt', null, k));
      var dd = el('dd'); if (v instanceof Node) { dd.appendChild(v); } else { dd.textContent = String(v); }
      d.appendChild(dd); dl.appendChild(d);
    }
    item('status', el('span', 'status ' + t.status, t.status));
    item('trace', el('code', null, t.id));
    if (t.workflow && t.workflow !== t.name) { item('workflow', t.workflow); }
    if (t.group_id) { item('group', el('code', null, t.group_id)); }
    item('started', iso(t.start));
    item('duration', t.end === null ? 'running' : fmtMs((t.end - t.start) / 1000));
    item('spans', t.spans.length);
    var u = t.usage || {};
    item('tokens', (u.total_tokens || 0) + ' (' + (u.input_tokens || 0) + ' in, ' + (u.output_tokens || 0) + ' out)');
    item('cost', t.cost_usd === null || t.cost_usd === undefined ? '—' : '$' + Number(t.cost_usd).toFixed(6));
    Object.keys(t.metadata || {}).forEach(function (k) { item(k, pretty(t.metadata[k])); });
    box.appendChild(dl);
    if (t.error) { box.appendChild(el('div', 'error-box', t.error.message)); }
  }

  function tabs() {
    var nav = $('tabs');
    nav.replaceChildren();
    nav.hidden = traces.length < 2;
    traces.forEach(function (t, i) {
      var b = el('button', i === state.trace ? 'active' : '', t.name);
      b.type = 'button';
      b.title = t.id;
      b.addEventListener('click', function () { select(i); });
      nav.appendChild(b);
    });
  }

  function legend() {
    var box = $('legend');
    KINDS.forEach(function (k) {
      var s = el('span'); s.appendChild(el('i', 'k-' + k)); s.appendChild(document.createTextNode(k)); box.appendChild(s);
    });
  }

  function section(box, title) { box.appendChild(el('h3', null, title)); }
  function kvTable(box, obj) {
    var table = el('table');
    Object.keys(obj).forEach(function (k) {
      var tr = el('tr'); tr.appendChild(el('td', null, k));
      var td = el('td'); td.appendChild(el('pre', null, pretty(obj[k]))); tr.appendChild(td);
      table.appendChild(tr);
    });
    box.appendChild(table);
  }
  function messages(box, v) {
    if (Array.isArray(v) && v.every(function (m) { return m && typeof m === 'object' && m.role; })) {
      v.forEach(function (m) {
        var d = el('div', 'msg');
        d.appendChild(el('b', null, m.role + (m.tool_call_id ? ' ' + m.tool_call_id : '')));
        if (m.content !== null && m.content !== undefined && m.content !== '') { d.appendChild(el('pre', null, pretty(m.content))); }
        if (m.tool_calls) { d.appendChild(el('pre', null, pretty(m.tool_calls))); }
        box.appendChild(d);
      });
    } else {
      box.appendChild(el('pre', null, pretty(v)));
    }
  }

  function detail() {
    var t = traces[state.trace], box = $('detail');
    box.replaceChildren();
    var s = t && t.spans[state.selected];
    if (!s) { box.appendChild(el('div', 'empty', 'Select a span.')); return; }
    box.appendChild(el('h2', null, s.name));
    var meta = {
      kind: s.kind, status: s.status, span: s.id,
      parent: s.parent === null ? '—' : t.spans[s.parent].id,
      start: '+' + fmtMs((s.start - t.lo) / 1000) + '  (' + iso(s.start) + ')',
      duration: s.end === null ? 'running' : fmtMs((s.end - s.start) / 1000)
    };
    kvTable(box, meta);
    if (s.error) {
      section(box, 'Error');
      box.appendChild(el('div', 'error-box', s.error.message));
      if (s.error.data && Object.keys(s.error.data).length) { box.appendChild(el('pre', null, pretty(s.error.data))); }
    }
    var a = s.attributes || {}, rest = {};
    var inputs = ['input'], outputs = ['output', 'tool_calls', 'stdout'];
    Object.keys(a).forEach(function (k) { if (inputs.indexOf(k) < 0 && outputs.indexOf(k) < 0) { rest[k] = a[k]; } });
    if (a.input !== undefined) { section(box, 'Input'); messages(box, a.input); }
    outputs.forEach(function (k) {
      if (a[k] !== undefined) { section(box, k === 'output' ? 'Output' : k); messages(box, a[k]); }
    });
    if (Object.keys(rest).length) { section(box, 'Attributes'); kvTable(box, rest); }
    section(box, 'Events (' + s.events.length + ')');
    s.events.forEach(function (e) {
      var d = el('div', 'event');
      d.appendChild(el('div', null, '+' + fmtMs((e.time - t.lo) / 1000) + '  ' + e.name));
      if (Object.keys(e.attributes || {}).length) { kvTable(d, e.attributes); }
      box.appendChild(d);
    });
  }

  function choose(i) {
    state.selected = i;
    detail();
    drawRows(true);
  }

  function select(i) {
    state.trace = i;
    state.selected = traces[i] && traces[i].roots.length ? traces[i].roots[0] : -1;
    viewport.scrollTop = 0;
    tabs(); header(); axis(); flatten(); detail(); drawRows(true);
  }

  function setAll(collapsed) {
    var t = traces[state.trace];
    if (!t) { return; }
    t.collapsed = {};
    if (collapsed) { t.children.forEach(function (c, i) { if (c.length) { t.collapsed[i] = true; } }); }
    flatten(); drawRows(true);
  }

  spacer.addEventListener('click', function (e) {
    var target = e.target;
    var toggle = target.closest ? target.closest('[data-toggle]') : null;
    var t = traces[state.trace];
    if (toggle) {
      var i = Number(toggle.getAttribute('data-toggle'));
      t.collapsed[i] = !t.collapsed[i];
      flatten(); drawRows(true);
      return;
    }
    var r = target.closest ? target.closest('[data-span]') : null;
    if (r) { choose(Number(r.getAttribute('data-span'))); }
  });
  viewport.addEventListener('keydown', function (e) {
    var t = traces[state.trace];
    if (!t) { return; }
    var at = state.rows.indexOf(state.selected);
    if (e.key === 'ArrowDown' && at + 1 < state.rows.length) { choose(state.rows[at + 1]); }
    else if (e.key === 'ArrowUp' && at > 0) { choose(state.rows[at - 1]); }
    else if (e.key === 'ArrowLeft' && t.children[state.selected] && t.children[state.selected].length) { t.collapsed[state.selected] = true; flatten(); drawRows(true); }
    else if (e.key === 'ArrowRight') { delete t.collapsed[state.selected]; flatten(); drawRows(true); }
    else { return; }
    e.preventDefault();
    var pos = state.rows.indexOf(state.selected) * ROW;
    if (pos < viewport.scrollTop) { viewport.scrollTop = pos; }
    else if (pos + ROW > viewport.scrollTop + viewport.clientHeight) { viewport.scrollTop = pos + ROW - viewport.clientHeight; }
  });
  var pending = false;
  viewport.addEventListener('scroll', function () {
    if (pending) { return; }
    pending = true;
    window.requestAnimationFrame(function () { pending = false; drawRows(false); });
  });
  window.addEventListener('resize', function () { drawRows(true); });
  $('expand').addEventListener('click', function () { setAll(false); });
  $('collapse').addEventListener('click', function () { setAll(true); });

  legend();
  select(0);
  var total = traces.reduce(function (n, t) { return n + t.spans.length; }, 0);
  document.body.setAttribute('data-traces', String(traces.length));
  document.body.setAttribute('data-rendered', total + ' spans');
})();
</script>
</body>
</html>
"##;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_json_cannot_close_its_script_element() {
        let v = json!({"name": "</script><script>alert(1)</script> & <!-- \u{2028}"});
        let text = script_json(&v);
        assert!(!text.contains('<') && !text.contains('>') && !text.contains('&'));
        assert!(!text.contains('\u{2028}'));
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn the_page_fetches_nothing() {
        let page = render(&[]);
        for needle in [
            "src=",
            "href=",
            "@import",
            "url(",
            "fetch(",
            "XMLHttpRequest",
            "http://",
            "https://",
        ] {
            assert!(!page.contains(needle), "the page contains {needle}");
        }
        assert!(page.contains("<title>0 traces — agentrace</title>"));
    }

    #[test]
    fn titles_are_escaped() {
        assert_eq!(escape_html("<b>&\"'"), "&lt;b&gt;&amp;&quot;&#39;");
    }
}
