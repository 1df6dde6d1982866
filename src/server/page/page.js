// The status page: polls /api/status (and /api/graph when the config's
// generation changes) and draws them. Everything that comes from the agent
// (names, messages, errors, diagnostics) is hostile input: it only ever
// becomes a text node or an attribute value, never markup.
"use strict";

(() => {
  const POLL_MS = 2000;
  const SLOW_POLL_MS = 10000;
  const LARGE = 500;
  const TOKEN_KEY = "mooring.token";

  const $ = (id) => document.getElementById(id);
  const store = {
    status: null,
    graph: null,
    graphGeneration: -1,
    lastOk: 0,
    pending: false,
    filter: "",
    open: new Set(),
    results: new Map(),
  };

  function session(op, value) {
    try {
      if (op === "get") return window.sessionStorage.getItem(TOKEN_KEY) || "";
      if (op === "set") window.sessionStorage.setItem(TOKEN_KEY, value);
      if (op === "del") window.sessionStorage.removeItem(TOKEN_KEY);
    } catch (_) {
      // Storage may be disabled; the token then lasts until the page reloads.
    }
    return "";
  }
  let token = session("get");

  // An element with fixed attribute names; values and children are data.
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    setAttrs(e, attrs);
    append(e, children);
    return e;
  }

  function svg(tag, attrs, ...children) {
    const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
    setAttrs(e, attrs);
    append(e, children);
    return e;
  }

  function setAttrs(e, attrs) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      e.setAttribute(k, v === true ? "" : String(v));
    }
  }

  function append(e, children) {
    for (const c of children.flat()) {
      if (c === undefined || c === null || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
  }

  // jiff writes up to nine fractional digits; Date takes three.
  function parseTime(ts) {
    if (!ts) return NaN;
    return Date.parse(String(ts).replace(/(\.\d{3})\d+/, "$1"));
  }

  function span(ms) {
    let s = Math.round(Math.abs(ms) / 1000);
    if (s < 60) return s + "s";
    const units = [["d", 86400], ["h", 3600], ["m", 60], ["s", 1]];
    const parts = [];
    for (const [u, n] of units) {
      if (s >= n && parts.length < 2) {
        parts.push(Math.floor(s / n) + u);
        s %= n;
      } else if (parts.length) {
        break;
      }
    }
    return parts.join("");
  }

  // A <time> saying "2m5s ago" or "in 41s", with the exact time as its title.
  function when(ts) {
    const t = parseTime(ts);
    if (Number.isNaN(t)) return null;
    const d = t - Date.now();
    const text = Math.abs(d) < 1000 ? "now" : d < 0 ? span(d) + " ago" : "in " + span(d);
    return el("time", { datetime: ts, title: ts }, text);
  }

  function keyOf(o) {
    return o.kind + "/" + o.name;
  }

  async function poll() {
    try {
      const r = await fetch("/api/status", { cache: "no-store" });
      if (!r.ok) throw new Error("the agent answered HTTP " + r.status);
      store.status = await r.json();
      store.lastOk = Date.now();
      if (store.status.generation !== store.graphGeneration) await loadGraph();
      render();
      setLive(true);
    } catch (e) {
      setLive(false, e);
    }
    // A large fleet's status is large: fetched and drawn less often.
    const large = store.status && (store.status.objects || []).length > LARGE;
    setTimeout(poll, document.hidden || large ? SLOW_POLL_MS : POLL_MS);
  }

  async function loadGraph() {
    try {
      const r = await fetch("/api/graph", { cache: "no-store" });
      if (!r.ok) return;
      store.graph = await r.json();
      store.graphGeneration = store.graph.generation;
    } catch (_) {
      // Drawn again at the next poll.
    }
  }

  function setLive(ok, err) {
    const live = $("live");
    live.classList.toggle("stale", !ok);
    if (ok) {
      live.textContent = "live · " + new Date(store.lastOk).toLocaleTimeString();
    } else {
      const since = store.lastOk ? " since " + new Date(store.lastOk).toLocaleTimeString() : "";
      live.textContent = "cannot reach the agent" + since + (err && err.message ? ": " + err.message : "");
    }
  }

  // Someone selecting text (to copy an error) or with the keyboard on a
  // button keeps it: a redraw waits for the selection to end, and focus
  // moves to the same control in the new cards.
  function selecting() {
    const sel = window.getSelection ? window.getSelection() : null;
    return !!sel && !sel.isCollapsed && String(sel) !== "";
  }

  function focused() {
    const f = document.activeElement;
    if (!f || !f.classList) return null;
    if (f.classList.contains("node")) return { key: f.dataset.key, node: true };
    const card = f.classList.contains("reconcile") ? f.closest("article") : null;
    return card ? { key: card.dataset.key, node: false } : null;
  }

  function refocus(was) {
    if (!was) return;
    const scope = was.node ? ".graph .node" : "article.object";
    const owner = [...document.querySelectorAll(scope)].find((e) => e.dataset.key === was.key);
    const target = owner && (was.node ? owner : owner.querySelector("button.reconcile"));
    if (target) target.focus({ preventScroll: true });
  }

  function render() {
    const s = store.status;
    if (!s) return;
    if (selecting()) {
      store.pending = true;
      return;
    }
    store.pending = false;
    const was = focused();
    renderAbout(s);
    renderReload(s.last_reload);
    renderCounts(s.objects || []);
    renderGraph(s.objects || []);
    renderObjects(s.objects || []);
    renderTable("receivers", s.receivers, ["name", "accepted", "ignored", "duplicates", "rejected", "last_delivery", "last_rejection"]);
    renderTable("notifications", s.notifications, ["name", "sent", "failed", "dropped", "last_sent", "last_error"]);
    refocus(was);
  }

  function renderAbout(s) {
    const parts = [
      el("strong", {}, "mooring " + (s.version || "")),
      " · ", el("span", { class: "mono" }, s.config || ""),
      " · generation " + s.generation,
      " · started ", when(s.started),
    ];
    const le = s.leader_election;
    if (le) {
      parts.push(" · " + (le.role || "") + " of lease " + (le.lease || ""));
      if (le.holder && le.role !== "leader") parts.push(" (held by " + le.holder + ")");
      if (le.shards && le.shards.length) {
        const mine = le.shards.map((sh, i) => (sh.mine ? i : null)).filter((i) => i !== null);
        parts.push(" · shards " + (mine.length ? mine.join(" ") : "none") + " of " + le.shards.length +
          " here · " + (le.replicas || 1) + " live replicas");
      }
    }
    $("about").replaceChildren(...parts.filter((p) => p !== null));
  }

  function renderReload(r) {
    const box = $("reload");
    if (!r) {
      box.replaceChildren();
      return;
    }
    const parts = [
      el("p", {},
        el("span", { class: r.result === "ok" ? "reload-ok" : "reload-failed" }, r.result),
        " ", when(r.at),
        r.result === "failed" ? " · the agent runs the last good config" : ""),
    ];
    if (r.restart_needed && r.restart_needed.length) {
      parts.push(el("p", {}, "Needs a restart to take effect: ", r.restart_needed.join(", ")));
    }
    if (r.diagnostics) parts.push(el("pre", { class: "diagnostics" }, r.diagnostics));
    box.replaceChildren(...parts);
  }

  function renderCounts(objects) {
    const by = new Map();
    for (const o of objects) by.set(o.state, (by.get(o.state) || 0) + 1);
    const items = [el("li", {}, objects.length + " objects")];
    for (const [state, n] of [...by.entries()].sort()) {
      items.push(el("li", { "data-state": state }, el("span", { class: "state" }, String(n) + " " + state)));
    }
    $("counts").replaceChildren(...items);
  }

  const NODE_W = 200, NODE_H = 40, COL = 260, ROW = 54, PAD = 14;

  function renderGraph(objects) {
    const box = $("graph");
    const g = store.graph;
    if (!g || !g.nodes || !g.nodes.length) {
      box.replaceChildren(el("p", { class: "empty" }, g ? "No objects." : "Loading the graph…"));
      return;
    }
    const states = new Map(objects.map((o) => [keyOf(o), o]));
    const perLayer = new Map();
    for (const n of g.nodes) perLayer.set(n.layer, Math.max(perLayer.get(n.layer) || 0, n.row + 1));
    const layers = Math.max(...g.nodes.map((n) => n.layer)) + 1;
    const rows = Math.max(...perLayer.values());
    const pos = g.nodes.map((n) => ({
      x: PAD + n.layer * COL,
      y: PAD + n.row * ROW + ((rows - perLayer.get(n.layer)) * ROW) / 2,
    }));
    const width = PAD * 2 + (layers - 1) * COL + NODE_W;
    const height = PAD * 2 + (rows - 1) * ROW + NODE_H;
    const root = svg("svg", {
      width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
      "aria-label": "Dependency graph: " + g.nodes.length + " objects, " + g.edges.length + " edges",
    });
    root.append(svg("defs", {},
      svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto" },
        svg("path", { d: "M0,0L10,5L0,10z", class: "arrowhead", fill: "currentColor" }))));
    const edges = svg("g", { class: "edges", color: "gray" });
    for (const [from, to] of g.edges) {
      const a = pos[from], b = pos[to];
      if (!a || !b) continue;
      const x1 = a.x + NODE_W, y1 = a.y + NODE_H / 2, x2 = b.x, y2 = b.y + NODE_H / 2;
      const mid = (x1 + x2) / 2;
      edges.append(svg("path", { class: "edge", d: `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`, "marker-end": "url(#arrow)" }));
    }
    root.append(edges);
    g.nodes.forEach((n, i) => {
      const key = n.kind + "/" + n.name;
      const o = states.get(key);
      const state = o ? o.state : "pending";
      const label = n.name.length > 26 ? n.name.slice(0, 25) + "…" : n.name;
      const node = svg("g", {
        class: "node", "data-key": key, "data-state": state, tabindex: 0, role: "link",
        transform: `translate(${pos[i].x},${pos[i].y})`,
      },
        svg("title", {}, key + ": " + state + (o && o.suspended ? " (suspended)" : "")),
        svg("rect", { width: NODE_W, height: NODE_H, rx: 6 }),
        svg("text", { class: "kind", x: 10, y: 14 }, n.kind + " · " + state),
        svg("text", { x: 10, y: 31 }, label));
      const go = () => focusObject(key);
      node.addEventListener("click", go);
      node.addEventListener("keydown", (e) => {
        if (e.key === "Enter" || e.key === " ") {
          e.preventDefault();
          go();
        }
      });
      root.append(node);
    });
    box.replaceChildren(root);
  }

  function focusObject(key) {
    const card = [...document.querySelectorAll(".object")].find((c) => c.dataset.key === key);
    if (!card) return;
    card.scrollIntoView({ behavior: "smooth", block: "center" });
    card.classList.add("flash");
    setTimeout(() => card.classList.remove("flash"), 1500);
  }

  function matches(o) {
    const f = store.filter.trim().toLowerCase();
    if (!f) return true;
    return [o.kind, o.name, keyOf(o), o.state, o.reason || ""].some((v) => String(v).toLowerCase().includes(f));
  }

  function renderObjects(objects) {
    const shown = objects.filter(matches);
    const cards = shown.map(card);
    if (!cards.length) cards.push(el("p", { class: "muted" }, objects.length ? "No object matches the filter." : "The config declares no objects."));
    $("objects").replaceChildren(...cards);
  }

  function row(label, ...value) {
    const v = value.filter((x) => x !== null && x !== undefined && x !== "");
    return v.length ? [el("dt", {}, label), el("dd", {}, ...v)] : [];
  }

  function card(o) {
    const key = keyOf(o);
    const head = el("h3", {},
      el("span", { class: "kind" }, o.kind),
      el("span", { class: "name" }, o.name),
      el("span", { class: "state" }, o.state),
      o.reason ? el("span", { class: "reason muted" }, o.reason) : null);
    const parts = [head];
    if (o.suspended) {
      const s = o.suspended;
      parts.push(el("p", { class: "suspension" },
        el("strong", {}, "Suspended"),
        s.reason ? el("span", { class: "suspension-reason" }, ": " + s.reason) : " (no reason given)",
        s.until ? [" · until ", el("span", { class: "mono" }, s.until), " (", when(s.until), ")"] : null));
    }
    const applied = o.applied
      ? `${o.applied.created} created, ${o.applied.configured} configured, ${o.applied.unchanged} unchanged, ${o.applied.pruned} pruned`
      : null;
    parts.push(el("dl", {},
      row("revision", o.revision ? el("span", { class: "mono" }, o.revision) : null),
      row("message", o.message),
      row("trigger", o.trigger),
      row("last run", when(o.last_run)),
      row("last success", when(o.last_success)),
      row("next run", when(o.next_run)),
      row("runs", o.runs !== undefined ? `${o.runs} (${o.failures || 0} failures in a row)` : null),
      row("applied", applied),
      row("clusters", clusters(o.clusters)),
      row("artifact", o.artifact ? el("span", { class: "mono" }, o.artifact.checksum) : null),
      row("generation", o.generation)));
    if (o.last_error) {
      parts.push(el("div", { class: "error" }, el("strong", {}, "Last error"), el("pre", {}, o.last_error)));
    }
    if (Array.isArray(o.events) && o.events.length) parts.push(events(key, o.events));
    const button = el("button", { type: "button", class: "reconcile" }, "Reconcile now");
    if (o.suspended) {
      button.disabled = true;
      button.title = "Suspended: resume it first";
    }
    button.addEventListener("click", () => reconcile(o));
    parts.push(el("div", { class: "actions" }, button, el("span", { class: "result" }, store.results.get(key) || "")));
    return el("article", { class: "object", "data-key": key, "data-state": o.state }, ...parts);
  }

  // One line per cluster of an app: name, state, revision, message.
  function clusters(list) {
    if (!Array.isArray(list) || !list.length) return null;
    return el("ul", { class: "clusters" }, ...list.map((c) =>
      el("li", { "data-state": c.state },
        el("strong", {}, (c.cluster === null || c.cluster === undefined ? "(default)" : c.cluster) + (c.dropped ? " (dropped)" : "")),
        " ", el("span", { class: "state" }, c.state),
        c.revision ? [" · ", el("span", { class: "mono" }, c.revision)] : null,
        c.message ? el("div", {}, c.message) : null)));
  }

  function events(key, list) {
    const d = el("details", { class: "events-box" },
      el("summary", {}, "Events (" + list.length + ")"),
      el("ul", { class: "events" }, ...newestFirst(list).map((e) =>
        el("li", {},
          when(e.last_time || e.time), " ",
          el("strong", {}, e.reason || ""),
          e.count > 1 ? " ×" + e.count : "",
          e.trigger ? " · " + e.trigger : "",
          e.revision ? [" · ", el("span", { class: "mono" }, e.revision)] : null,
          e.message ? el("div", {}, e.message) : null))));
    d.open = store.open.has(key);
    d.addEventListener("toggle", () => (d.open ? store.open.add(key) : store.open.delete(key)));
    return d;
  }

  function newestFirst(list) {
    const t = (e) => parseTime(e.last_time || e.time) || 0;
    return list.slice().sort((a, b) => t(b) - t(a));
  }

  async function reconcile(o) {
    const key = keyOf(o);
    store.results.set(key, "asking the agent…");
    render();
    const headers = {};
    if (token) headers.Authorization = "Bearer " + token;
    let text;
    try {
      const r = await fetch("/api/reconcile/" + encodeURIComponent(o.kind) + "/" + encodeURIComponent(o.name), {
        method: "POST",
        headers,
        cache: "no-store",
      });
      let body = {};
      try {
        body = await r.json();
      } catch (_) {
        // Not JSON: the status code says enough.
      }
      if (r.status === 202) text = "accepted: it runs now";
      else if (r.status === 401) {
        text = token ? "the agent refused this token" : "this agent needs an API token";
        showTokenForm(text);
      } else text = (body && body.error) || "refused: HTTP " + r.status;
    } catch (_) {
      text = "cannot reach the agent";
    }
    store.results.set(key, text);
    render();
  }

  function renderTable(name, rows, columns) {
    const section = $(name + "-section");
    if (!Array.isArray(rows) || !rows.length) {
      section.hidden = true;
      return;
    }
    section.hidden = false;
    const head = el("tr", {}, ...columns.map((c) => el("th", { scope: "col" }, c.replace(/_/g, " "))));
    const body = rows.map((r) => el("tr", {}, ...columns.map((c) => {
      const v = r[c];
      return el("td", {}, /^last_(delivery|sent)$/.test(c) ? when(v) : v === undefined || v === null ? "" : String(v));
    })));
    $(name).replaceChildren(el("div", { class: "table" }, el("table", {}, el("thead", {}, head), el("tbody", {}, ...body))));
  }

  function showTokenForm(why) {
    $("token-form").hidden = false;
    if (why) notice(why + ": enter it above.");
    $("token-input").focus();
  }

  function notice(text) {
    const n = $("notice");
    n.textContent = text || "";
    n.hidden = !text;
  }

  function setup() {
    $("token-button").addEventListener("click", () => {
      const form = $("token-form");
      form.hidden = !form.hidden;
      if (!form.hidden) $("token-input").focus();
    });
    $("token-form").addEventListener("submit", (e) => {
      e.preventDefault();
      token = $("token-input").value.trim();
      $("token-input").value = "";
      if (token) session("set", token);
      else session("del");
      $("token-form").hidden = true;
      notice("");
    });
    $("token-clear").addEventListener("click", () => {
      token = "";
      session("del");
      $("token-input").value = "";
      $("token-form").hidden = true;
    });
    $("filter").addEventListener("input", (e) => {
      store.filter = e.target.value;
      render();
    });
    document.addEventListener("selectionchange", () => {
      if (store.pending && !selecting()) render();
    });
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) render();
    });
    poll();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setup);
  else setup();
})();
