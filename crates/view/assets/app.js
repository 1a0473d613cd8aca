// Shammie's run viewer. Every piece of text from a run (model output, prompts, ids,
// scores) is set with textContent through el(); nothing from a run is ever parsed as
// HTML. Routes live in the URL hash, so every view is a permalink:
//   #/                                   the runs
//   #/run/RUN?stage=&q=&error=&dataset=&score=&offset=   a run: results, figures, samples
//   #/run/RUN/sample/ID?epoch=E&stage=S  one sample's transcript
//   #/run/RUN/explore?node=ID            a cluster explorer (runs with data/tree.json):
//                                        the tree of clusters and the 2-D map
"use strict";

const app = document.getElementById("app");
const crumbs = document.getElementById("crumbs");
const live = document.getElementById("live");
let routeToken = 0;

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

async function getJSON(url) {
  const r = await fetch(url, { cache: "no-store" });
  if (!r.ok) throw new Error(url + ": " + r.status + " " + (await r.text()));
  return r.json();
}

const enc = encodeURIComponent;
function runUrl(run) { return "/api/runs/" + enc(run); }
function hashFor(parts, query) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query || {})) if (v !== undefined && v !== null && v !== "" && v !== 0) q.set(k, v);
  const qs = q.toString();
  return "#/" + parts.map(enc).join("/") + (qs ? "?" + qs : "");
}

function parseHash() {
  const h = location.hash.replace(/^#\/?/, "");
  const [path, qs] = h.split("?");
  const parts = path ? path.split("/").map(decodeURIComponent) : [];
  return { parts, query: Object.fromEntries(new URLSearchParams(qs || "")) };
}

function setCrumbs(...items) {
  crumbs.replaceChildren(...items.flatMap((x, i) => (i ? [" / ", x] : [x])));
}

function fmtNum(v, decimals) {
  if (typeof v !== "number" || !isFinite(v)) return "—";
  const s = v.toFixed(decimals);
  return /^-0\.?0*$/.test(s) ? s.slice(1) : s;
}

function cellText(c, decimals) {
  if (c === null || c === undefined || c === "Empty") return "—";
  if (typeof c === "number") return Number.isInteger(c) ? String(c) : fmtNum(c, decimals);
  if (typeof c === "string") return c;
  if (typeof c === "object" && "count" in c) return c.count + " of " + c.of + (c.unit ? " " + c.unit : "");
  if (typeof c === "object" && "estimate" in c) {
    let s = fmtNum(c.estimate, decimals) + " [" + fmtNum(c.lo, decimals) + ", " + fmtNum(c.hi, decimals) + "]";
    if (c.n !== undefined && c.n !== null) s += " n=" + c.n + (c.n < 5 ? "†" : "");
    return s;
  }
  return JSON.stringify(c);
}

function renderTable(t) {
  const decimals = t.decimals ?? 3;
  const head = el("tr", {}, t.columns.map((c) => el("th", {}, c)));
  const rows = t.rows.map((r) =>
    el("tr", {}, r.map((c) => el("td", { class: typeof c === "string" ? "" : "num" }, cellText(c, decimals)))));
  return el("section", { class: "result-table", "data-name": t.name },
    el("h3", {}, t.title || t.name),
    t.caption ? el("p", { class: "caption" }, t.caption) : null,
    el("div", { class: "scroll" }, el("table", {}, el("thead", {}, head), el("tbody", {}, rows))),
    t.notes && t.notes.length ? el("ul", { class: "notes" }, t.notes.map((n) => el("li", {}, n))) : null);
}

function statusSpan(s) { return el("span", { class: "status-" + s }, s); }

async function viewRuns(token) {
  setCrumbs("runs");
  const runs = await getJSON("/api/runs");
  if (token !== routeToken) return;
  const rows = runs.map((r) =>
    el("tr", { class: "clickable run-row", "data-run": r.id, onclick: () => { location.hash = hashFor(["run", r.id]); } },
      el("td", {}, el("a", { href: hashFor(["run", r.id]) }, r.id)),
      el("td", {}, r.study + "/" + r.task),
      el("td", {}, Object.entries(r.models).map(([k, v]) => k + "=" + v).join(", ")),
      el("td", {}, r.created_at.replace("T", " ").slice(0, 19)),
      el("td", { class: "num" }, r.samples),
      el("td", { class: "num" + (r.failed ? " bad" : "") }, r.failed),
      el("td", { class: "num" }, r.input_tokens + " / " + r.output_tokens),
      el("td", { class: "num" }, r.cost_usd ? "$" + r.cost_usd.toFixed(4) + " ($" + r.paid_cost_usd.toFixed(4) + ")" : "—"),
      el("td", {}, statusSpan(r.status))));
  app.replaceChildren(
    el("h1", {}, "Runs"),
    runs.length
      ? el("table", { id: "runs" },
          el("thead", {}, el("tr", {}, ["run", "task", "models", "created", "samples", "failed", "tokens in / out", "cost (paid)", "status"].map((h) => el("th", {}, h)))),
          el("tbody", {}, rows))
      : el("p", { class: "muted" }, "No run directories here."));
  // The list always follows the folders: a run started elsewhere shows up by itself.
  return true;
}

function filterForm(run, query, info) {
  const input = (name, placeholder, size) =>
    el("input", { name, value: query[name] || "", placeholder, size: size || 18 });
  const select = (name, options) =>
    el("select", { name }, options.map(([v, label]) => {
      const o = el("option", { value: v }, label);
      if ((query[name] || "") === v) o.selected = true;
      return o;
    }));
  const form = el("form", { class: "filters", id: "filters" },
    el("label", {}, "search", input("q", "text in the record", 28)),
    el("label", {}, "outcome", select("error", [["", "all"], ["none", "succeeded"], ["only", "failed"]])),
    info.datasets.length ? el("label", {}, "dataset", select("dataset", [["", "all"], ...info.datasets.map((d) => [d, d])])) : null,
    el("label", {}, "score", input("score", info.scores.length ? info.scores[0] + ">0" : "name>0", 18)),
    el("button", { type: "submit" }, "Filter"));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const q = { stage: query.stage };
    for (const [k, v] of new FormData(form).entries()) q[k] = v;
    location.hash = hashFor(["run", run], q);
  });
  return form;
}

function scoreText(v) {
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : fmtNum(v, 3);
  return String(v);
}

async function viewRun(token, run, query) {
  setCrumbs(el("a", { href: "#/" }, "runs"), run);
  const [info, page] = await Promise.all([
    getJSON(runUrl(run)),
    getJSON(runUrl(run) + "/samples?" + new URLSearchParams({
      stage: query.stage || "", offset: query.offset || 0, limit: 100,
      q: query.q || "", error: query.error || "", dataset: query.dataset || "", score: query.score || "",
    })),
  ]);
  if (token !== routeToken) return false;
  const s = info.summary;
  const meta = info.meta || {};
  const results = info.results;
  const parts = [
    el("h1", {}, s.study + "/" + s.task),
    el("dl", { class: "kv" },
      el("dt", {}, "run"), el("dd", {}, s.path),
      el("dt", {}, "models"), el("dd", {}, Object.entries(s.models).map(([k, v]) => k + "=" + v).join(", ")),
      el("dt", {}, "created"), el("dd", {}, s.created_at),
      el("dt", {}, "seed"), el("dd", {}, s.seed),
      el("dt", {}, "options"), el("dd", {}, Object.entries(meta.options || {}).map(([k, v]) => k + "=" + v).join("  ") || "—"),
      el("dt", {}, "samples"), el("dd", {}, s.samples + (s.failed ? " (" + s.failed + " failed)" : "")),
      el("dt", {}, "status"), el("dd", {}, statusSpan(s.status))),
  ];
  if (results && results.tables) {
    const files = results.files || [];
    if (files.some((f) => f.path === "data/tree.json")) {
      parts.push(el("p", { class: "explore-link" },
        el("a", { href: hashFor(["run", run, "explore"]), id: "explore" }, "Explore the clusters: tree and map →")));
    }
    parts.push(el("h2", {}, "Results"));
    for (const t of results.tables) parts.push(renderTable(t));
    const figures = files.filter((f) => /\.(svg|png)$/i.test(f.path));
    const others = files.filter((f) => !/\.(svg|png)$/i.test(f.path));
    if (figures.length) {
      parts.push(el("h2", {}, "Figures"));
      for (const f of figures) {
        parts.push(el("figure", { class: "figure" },
          el("img", { src: runUrl(run) + "/file/" + f.path.split("/").map(enc).join("/"), alt: f.description }),
          el("figcaption", { class: "muted" }, f.path + " — " + f.description)));
      }
    }
    if (others.length) {
      parts.push(el("h2", {}, "Files"),
        el("ul", {}, others.map((f) => el("li", {},
          el("a", { href: runUrl(run) + "/file/" + f.path.split("/").map(enc).join("/"), target: "_blank", rel: "noopener" }, f.path),
          " — " + f.description))));
    }
  } else {
    parts.push(el("p", { class: "muted" }, "No results yet" + (s.status === "running" ? ": the run is in progress." : ".")));
  }
  parts.push(el("h2", { id: "samples" }, "Samples"));
  if (s.stages.length) {
    const stages = [["", "(main)"], ...s.stages.map((x) => [x, x])];
    const priv = s.private || {};
    parts.push(el("p", {}, "stage: ", stages.map(([v, label]) =>
      (query.stage || "") === v ? el("b", {}, label + (v in priv ? " (private)" : "") + " ") : el("a", { href: hashFor(["run", run], { stage: v }) }, label + (v in priv ? " (private)" : "") + " "))));
  }
  if (page.private) {
    parts.push(el("p", { class: "private", id: "private" },
      "This stage's records are private (" + page.private + "). The study analyses them but never shows them, and neither does the viewer."));
    app.replaceChildren(...parts);
    return s.status === "running";
  }
  parts.push(filterForm(run, query, page));
  const offset = Number(query.offset || 0);
  parts.push(el("p", { class: "muted", id: "matching" },
    page.matching + " of " + page.total + " samples match" + (page.matching ? "; showing " + (offset + 1) + "–" + (offset + page.items.length) : "")));
  const scoreNames = page.scores.slice(0, 8);
  const rows = page.items.map((it) => {
    const href = hashFor(["run", run, "sample", it.id], { epoch: it.epoch, stage: query.stage });
    const sc = Object.fromEntries(it.scores);
    return el("tr", { class: "clickable sample-row", "data-id": it.id, onclick: () => { location.hash = href; } },
      el("td", {}, el("a", { href }, it.id)),
      el("td", { class: "num" }, it.epoch),
      it.dataset !== undefined ? el("td", {}, it.dataset) : el("td", {}),
      scoreNames.map((n) => el("td", { class: "num" }, n in sc ? scoreText(sc[n]) : "")),
      el("td", { class: it.error ? "bad" : "" }, it.error ? "failed" : ""));
  });
  parts.push(el("table", { id: "sample-list" },
    el("thead", {}, el("tr", {}, ["id", "epoch", "dataset", ...scoreNames, "error"].map((h) => el("th", {}, h)))),
    el("tbody", {}, rows)));
  const pager = el("div", { class: "pager" });
  if (offset > 0) pager.append(el("a", { href: hashFor(["run", run], { ...query, offset: Math.max(0, offset - 100) }) }, "← previous"));
  if (offset + page.items.length < page.matching) pager.append(el("a", { href: hashFor(["run", run], { ...query, offset: offset + 100 }) }, "next →"));
  parts.push(pager);
  app.replaceChildren(...parts);
  return s.status === "running";
}

function messageBlock(m) {
  let content = m.content;
  const extra = [];
  if (m.tool_calls && m.tool_calls.length) extra.push(el("pre", {}, m.tool_calls.map((t) => "tool call " + t.name + "(" + t.arguments + ")").join("\n")));
  if (m.tool_result) extra.push(el("div", { class: "muted" }, "tool result for " + (m.tool_result.call_id || "")));
  return [el("div", { class: "role" }, m.role), el("div", { class: "text" }, content), ...extra];
}

function responseBlock(resp) {
  if (!resp) return [];
  const out = [el("div", { class: "role" }, "response")];
  if (resp.logprobs && resp.logprobs.length) {
    const spans = resp.logprobs.map((t) => {
      const p = Math.exp(t.logprob);
      const title = (t.top || []).map((a) => JSON.stringify(a.token) + "  " + Math.exp(a.logprob).toFixed(4)).join("\n");
      const span = el("span", { class: "tok", title: "p=" + p.toFixed(4) + (title ? "\n" + title : ""), "data-p": p.toFixed(4) }, t.token);
      // Less likely tokens are shaded darker (CSSOM, which the page's policy allows).
      span.style.backgroundColor = "rgba(11, 99, 168, " + (0.35 * (1 - p)).toFixed(3) + ")";
      return span;
    });
    if (resp.logprobs.map((t) => t.token).join("") === resp.text) {
      out.push(el("div", { class: "text response" }, spans));
    } else {
      // Logprobs for part of the reply only (e.g. the answer's first token).
      out.push(el("div", { class: "text response" }, resp.text),
        el("div", { class: "muted" }, "logprobs of the first " + spans.length + " tokens (hover for the top alternatives):"),
        el("div", { class: "text" }, spans));
    }
  } else {
    out.push(el("div", { class: "text response" }, resp.text));
  }
  if (resp.continuations) {
    out.push(el("pre", {}, resp.continuations.map((c, i) => "continuation " + (i + 1) + ": log p = " + c.logprob.toFixed(4) + " (" + c.tokens + " tokens)").join("\n")));
  }
  if (resp.tool_calls && resp.tool_calls.length) {
    out.push(el("pre", {}, resp.tool_calls.map((t) => "tool call " + t.name + "(" + t.arguments + ")").join("\n")));
  }
  const u = resp.usage || {};
  out.push(el("div", { class: "muted" }, "stop: " + resp.stop_reason + " · tokens in " + (u.input_tokens ?? "?") + ", out " + (u.output_tokens ?? "?") + (resp.meta && resp.meta.cost_usd !== undefined ? " · $" + resp.meta.cost_usd.toFixed(6) : "") + (resp.meta && resp.meta.cached ? " · cached" : "")));
  return out;
}

// A long text (a system prompt with worked examples) starts folded, showing its start.
function longText(label, text) {
  if (text.length <= 600) return [el("div", { class: "role" }, label), el("div", { class: "text" }, text)];
  return el("details", { class: "long" },
    el("summary", { class: "role" }, label + " (" + text.length + " characters): " + text.slice(0, 120).replace(/\s+/g, " ") + "…"),
    el("div", { class: "text" }, text));
}

function eventBlock(e, k) {
  if (e.type === "call") {
    const r = e.request || {};
    return el("div", { class: "event call" },
      el("div", { class: "head" }, "call " + k + " · " + e.role + " ", el("span", { class: "muted" }, (e.label ? e.label + " · " : "") + e.model)),
      r.system ? longText("system", r.system) : null,
      (r.messages || []).map(messageBlock),
      r.prefill ? [el("div", { class: "role" }, "prefill"), el("div", { class: "text" }, r.prefill)] : null,
      r.continuations && r.continuations.length ? el("div", { class: "muted" }, "scoring: " + r.continuations.map((c) => JSON.stringify(c)).join(", ")) : null,
      el("div", { class: "muted" }, "max_tokens " + r.max_tokens + (r.temperature !== undefined ? " · temperature " + r.temperature : "") + (r.stop && r.stop.length ? " · stop " + JSON.stringify(r.stop) : "")),
      e.rendered_prompt ? el("details", {}, el("summary", {}, "the prompt as the model read it"), el("div", { class: "text" }, e.rendered_prompt)) : null,
      responseBlock(e.response),
      e.error ? el("div", { class: "bad" }, "error: " + e.error) : null);
  }
  if (e.type === "tool") {
    const input = e.input && typeof e.input === "object" && Object.keys(e.input).length === 1 && "text" in e.input ? e.input.text : JSON.stringify(e.input, null, 2);
    return el("div", { class: "event tool" },
      el("div", { class: "head" }, "tool " + e.name + " ",
        el("span", { class: "muted" }, (e.exit_status !== undefined ? "exit " + e.exit_status + " · " : "") + e.duration_ms + " ms" + (e.replayed ? " · replayed from the journal" : ""))),
      el("div", { class: "role" }, "input"), el("div", { class: "text" }, input),
      el("div", { class: "role" }, "output"), el("div", { class: "text" }, e.output),
      e.error ? el("div", { class: "bad" }, "error: " + e.error) : null);
  }
  return el("div", { class: "event note" }, el("div", { class: "head" }, "note"), el("div", { class: "text" }, e.text ?? JSON.stringify(e)));
}

async function viewSample(token, run, id, query) {
  const back = hashFor(["run", run], { stage: query.stage });
  setCrumbs(el("a", { href: "#/" }, "runs"), el("a", { href: back }, run), id);
  const r = await getJSON(runUrl(run) + "/sample?" + new URLSearchParams({ id, epoch: query.epoch || 1, stage: query.stage || "" }));
  if (token !== routeToken) return false;
  const scores = Object.entries(r.scores || {});
  const events = (r.transcript && (r.transcript.events || r.transcript.calls)) || [];
  let k = 0;
  app.replaceChildren(
    el("h1", { id: "sample-title" }, id),
    el("dl", { class: "kv" },
      el("dt", {}, "epoch"), el("dd", {}, r.epoch),
      el("dt", {}, "started"), el("dd", {}, r.started_at + " · " + r.duration_ms + " ms"),
      el("dt", {}, "tokens"), el("dd", {}, (r.usage ? r.usage.input_tokens + " in, " + r.usage.output_tokens + " out" : "—")),
      r.error ? [el("dt", {}, "error"), el("dd", { class: "bad" }, r.error)] : null),
    el("h2", {}, "Scores"),
    scores.length
      ? el("table", { id: "scores" }, el("tbody", {}, scores.map(([k2, v]) =>
          el("tr", {}, el("th", {}, k2), el("td", {}, typeof v === "object" ? JSON.stringify(v) : scoreText(v))))))
      : el("p", { class: "muted" }, "none"),
    el("h2", {}, "Input"),
    el("pre", { id: "input" }, JSON.stringify(r.input, null, 2)),
    el("h2", {}, "Transcript (" + events.length + " events)"),
    el("div", { id: "transcript" }, events.map((e) => eventBlock(e.type ? e : { type: "call", ...e }, e.type === "call" || !e.type ? ++k : k))));
  return false;
}

// The cluster explorer: a collapsible tree of the clusters a study chose to show
// (data/tree.json; withheld clusters appear only as counts) beside a zoomable map of
// conversations (data/map.json). Selecting a cluster in either highlights it in both.
const SVG_NS = "http://www.w3.org/2000/svg";
const PALETTE = ["#0b63a8", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#7b5ea7", "#b8860b", "#228b22", "#c0392b"];

function svgEl(tag, attrs, ...children) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

// A cluster's drill-down: its conversations' concerning ratings (mean, 95% interval and
// a bar per rating) and languages, as the study summed them (absent in older runs).
function facetsOf(f) {
  if (!f) return null;
  const parts = [];
  const c = f.concerning;
  if (c && c.n) {
    const top = Math.max(...c.counts, 1);
    const bars = el("span", { class: "bars", title: "conversations rated 1 to 5" },
      c.counts.map((k, i) => {
        const b = el("span", { class: "bar", title: "rated " + (i + 1) + ": " + k });
        b.style.height = Math.max(1, Math.round(14 * k / top)) + "px";
        return b;
      }));
    parts.push(el("span", { class: "concerning" },
      "concerning " + c.mean.toFixed(2) + (c.lo != null && isFinite(c.lo) ? " [" + c.lo.toFixed(2) + ", " + c.hi.toFixed(2) + "]" : "") + " (n = " + c.n + ") ",
      bars, " " + c.counts.join(" · ")));
  }
  if (f.languages && f.languages.length) {
    const total = f.languages.reduce((a, l) => a + l.conversations, 0);
    parts.push(el("span", { class: "languages" },
      "languages: " + f.languages.map((l) => l.language + " " + Math.round(100 * l.conversations / total) + "%").join(", ")));
  }
  return parts.length ? el("p", { class: "facets muted" }, ...parts.flatMap((p, i) => (i ? [" · ", p] : [p]))) : null;
}

async function viewExplore(token, run, query) {
  setCrumbs(el("a", { href: "#/" }, "runs"), el("a", { href: hashFor(["run", run]) }, run), "explore");
  const file = (p) => runUrl(run) + "/file/" + p.split("/").map(enc).join("/");
  const [tree, map] = await Promise.all([
    getJSON(file("data/tree.json")),
    getJSON(file("data/map.json")).catch(() => null),
  ]);
  if (token !== routeToken) return false;
  const total = tree.conversations || 0;
  // Each node's base clusters (for the map), and its parent (to open the path to it).
  const bases = new Map();
  const parentOf = new Map();
  const colourOf = new Map();
  const walk = (n, parent, colour) => {
    parentOf.set(n.id, parent);
    colourOf.set(n.id, colour);
    const own = n.level === 0 ? [n.id] : [];
    for (const c of n.children) own.push(...walk(c, n.id, colour));
    bases.set(n.id, own);
    return own;
  };
  tree.roots.forEach((r, i) => walk(r, null, PALETTE[i % PALETTE.length]));

  const nodeEls = new Map();
  const node = (n) => {
    const share = total ? (100 * n.conversations / total).toFixed(1) + "%" : "";
    const head = el("summary", { class: "node-head", "data-id": n.id },
      el("span", { class: "swatch" }), " ",
      el("span", { class: "node-name" }, n.name), " ",
      el("span", { class: "muted" }, n.conversations + " conversations (" + share + ") · " + n.users + " users" + (n.audit ? " · audit " + n.audit + "/5" : "")));
    head.querySelector(".swatch").style.backgroundColor = colourOf.get(n.id);
    head.addEventListener("click", () => select(n.id, false));
    const d = el("details", { class: "node", id: "node-" + n.id, "data-level": n.level },
      head,
      n.description ? el("p", { class: "desc" }, n.description) : null,
      facetsOf(n.facets),
      n.children.map(node),
      n.withheld_children
        ? el("p", { class: "muted withheld" }, n.withheld_children + " more cluster" + (n.withheld_children > 1 ? "s" : "") + " (" + n.withheld_conversations + " conversations) withheld by the privacy rule")
        : null);
    nodeEls.set(n.id, d);
    return d;
  };
  const treeBox = el("div", { id: "tree" },
    tree.roots.length ? tree.roots.map(node) : el("p", { class: "muted" }, "No cluster passed the privacy rule."));

  // The map.
  const mapBox = el("div", { id: "map" });
  const dots = [];
  const labels = [];
  if (map && map.points && map.points.length) {
    const xs = map.points.map((p) => p.x);
    const ys = map.points.map((p) => p.y);
    const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
    const pad = 0.08 * Math.max(x1 - x0, y1 - y0, 1e-6);
    const full = { x: x0 - pad, y: -(y1 + pad), w: x1 - x0 + 2 * pad, h: y1 - y0 + 2 * pad };
    let view = { ...full };
    const svg = svgEl("svg", { id: "map-svg", role: "img" });
    const setView = () => svg.setAttribute("viewBox", [view.x, view.y, view.w, view.h].join(" "));
    setView();
    const r = () => 0.006 * view.w;
    const topOf = new Map((map.clusters || []).map((c) => [c.id, c.top]));
    const g = svgEl("g", {});
    for (const p of map.points) {
      const c = svgEl("circle", { cx: p.x, cy: -p.y, r: r(), class: "dot", "data-cluster": p.cluster });
      c.style.fill = colourOf.get(topOf.get(p.cluster)) || colourOf.get(p.cluster) || "#888";
      c.addEventListener("click", () => select(p.cluster, true));
      dots.push(c);
      g.append(c);
    }
    for (const c of map.clusters || []) {
      const t = svgEl("text", { x: c.x, y: -c.y, class: "map-label", "data-cluster": c.id }, c.name);
      t.addEventListener("click", () => select(c.id, true));
      labels.push(t);
      g.append(t);
    }
    svg.append(g);
    const rescale = () => {
      for (const d of dots) d.setAttribute("r", r());
      for (const t of labels) t.style.fontSize = (0.028 * view.w) + "px";
    };
    rescale();
    // Zoom with the wheel around the pointer; drag to pan; double-click to reset.
    svg.addEventListener("wheel", (ev) => {
      ev.preventDefault();
      const box = svg.getBoundingClientRect();
      const fx = (ev.clientX - box.left) / box.width, fy = (ev.clientY - box.top) / box.height;
      const k = ev.deltaY < 0 ? 0.8 : 1.25;
      const w = view.w * k, h = view.h * k;
      view = { x: view.x + fx * (view.w - w), y: view.y + fy * (view.h - h), w, h };
      setView(); rescale();
    }, { passive: false });
    let drag = null;
    svg.addEventListener("mousedown", (ev) => { drag = { x: ev.clientX, y: ev.clientY, view: { ...view } }; });
    window.addEventListener("mouseup", () => { drag = null; });
    svg.addEventListener("mousemove", (ev) => {
      if (!drag) return;
      const box = svg.getBoundingClientRect();
      view = { ...drag.view, x: drag.view.x - (ev.clientX - drag.x) / box.width * drag.view.w, y: drag.view.y - (ev.clientY - drag.y) / box.height * drag.view.h };
      setView();
    });
    svg.addEventListener("dblclick", () => { view = { ...full }; setView(); rescale(); });
    mapBox.append(svg, el("p", { class: "muted" }, map.points.length + " conversations of the shown clusters drawn (" + map.sampled + " sampled for the map); wheel to zoom, drag to pan, double-click to reset."));
  } else {
    mapBox.append(el("p", { class: "muted" }, "No map for this run."));
  }

  function select(id, fromMap) {
    const inside = new Set(bases.get(id) || [id]);
    for (const d of dots) d.classList.toggle("faded", !inside.has(d.dataset.cluster));
    for (const t of labels) t.classList.toggle("faded", !inside.has(t.dataset.cluster));
    for (const [k, d] of nodeEls) d.classList.toggle("selected", k === id);
    // Open the path to the node.
    for (let at = id; at; at = parentOf.get(at)) if (nodeEls.get(at)) nodeEls.get(at).open = true;
    const target = nodeEls.get(id);
    if (fromMap && target) target.scrollIntoView({ block: "nearest" });
    history.replaceState(null, "", hashFor(["run", run, "explore"], { node: id }));
  }

  app.replaceChildren(
    el("h1", {}, "Clusters"),
    el("p", { class: "muted" }, total + " conversations clustered; " + (tree.levels || 0) + " level" + (tree.levels === 1 ? "" : "s") + " above the base clusters. Only clusters that passed the study's privacy rule are named here."),
    el("div", { class: "explorer" }, treeBox, mapBox));
  if (query.node && nodeEls.has(query.node)) select(query.node, true);
  return false;
}

async function route() {
  const token = ++routeToken;
  const { parts, query } = parseHash();
  let again = false;
  try {
    if (parts[0] === "run" && parts[2] === "sample") again = await viewSample(token, parts[1], parts.slice(3).join("/"), query);
    else if (parts[0] === "run" && parts[2] === "explore") again = await viewExplore(token, parts[1], query);
    else if (parts[0] === "run" && parts[1]) again = await viewRun(token, parts[1], query);
    else again = await viewRuns(token);
  } catch (err) {
    if (token === routeToken) app.replaceChildren(el("p", { class: "bad" }, String(err.message || err)));
  }
  if (token !== routeToken) return;
  live.textContent = again ? "live: updating every 2 s" : "";
  // The run list refreshes quietly (nothing running need be announced there).
  if (parts.length === 0) live.textContent = "";
  // A run being written: poll until it finishes (only while this view is shown, and not
  // while the user is typing in the filters).
  if (again) setTimeout(() => {
    if (token !== routeToken) return;
    const active = document.activeElement;
    if (active && active.form && active.form.id === "filters") { setTimeout(route, 2000); return; }
    route();
  }, 2000);
}

window.addEventListener("hashchange", route);
route();
