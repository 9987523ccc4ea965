// prefdata review: the page's only script. Model text is hostile: it is only ever set with textContent
// (through el()), never parsed as HTML.
"use strict";

const PAGE = 50;
const FILTERS = ["show", "split", "disagree", "max_margin", "max_confidence", "side", "flag", "reason", "decision"];
const token = document.querySelector('meta[name="review-token"]').content;
const state = { total: 0, pos: 0, offset: -1, rows: [], view: null, asking: null, openEarlier: false };

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value !== null && value !== undefined && value !== false) node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const $ = (id) => document.getElementById(id);
const fmt = (x, digits = 2) => (x === null || x === undefined ? "–" : Number(x).toFixed(digits));

function filterQuery() {
  const params = new URLSearchParams();
  for (const name of FILTERS) {
    const input = $("f-" + name);
    const value = input.type === "checkbox" ? (input.checked ? "1" : "") : input.value;
    if (value) params.set(name, value);
  }
  return params;
}

async function api(path, options) {
  const response = await fetch(path, options);
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

async function loadMeta() {
  const meta = await api("/api/meta");
  $("source").textContent = meta.source;
  showCounts(meta);
  fill($("f-split"), meta.splits);
  fill($("f-reason"), Object.keys(meta.reasons).map((r) => [r, `${r} (${meta.reasons[r]})`]));
  showFlags(meta);
}

function showFlags(meta) {
  // row flags are computed after the page opens on a large set: ask again until they are there
  const select = $("f-flag");
  select.replaceChildren(el("option", { value: "" }, meta.flagging === "running" ? "flagging rows…" : "any"));
  fill(select, meta.flags);
  if (meta.flagging === "running") {
    setTimeout(async () => {
      showFlags(await api("/api/meta"));
      if (state.offset >= 0) await loadPage(state.offset);  // the rows again, now with their flags
    }, 2000);
  } else if (meta.flagging) {
    $("message").textContent = meta.flagging;
  }
}

function fill(select, options) {
  for (const option of options) {
    const [value, label] = Array.isArray(option) ? option : [option, option];
    select.append(el("option", { value }, label));
  }
}

function showCounts(meta) {
  const d = meta.decided;
  $("counts").textContent = `${meta.pairs} pairs, ${meta.dropped} dropped rows · reviewed: ` +
    `${d.accept} accepted, ${d.swap} swapped, ${d.drop} dropped · log: ${meta.log}`;
}

async function loadPage(offset) {
  const params = filterQuery();
  params.set("offset", offset);
  params.set("limit", PAGE);
  const page = await api("/api/rows?" + params);
  state.total = page.total;
  state.offset = offset;
  state.rows = page.rows;
  renderList();
}

function renderList() {
  const list = $("rows");
  list.replaceChildren(...state.rows.map((row, i) => listItem(row, state.offset + i)));
  const last = Math.min(state.offset + PAGE, state.total);
  $("page-info").textContent = state.total ? `${state.offset + 1}–${last} of ${state.total}` : "nothing matches";
}

function listItem(row, pos) {
  const badges = [];
  if (row.decision) badges.push(el("span", { class: "badge " + row.decision }, row.decision));
  if (row.reason) badges.push(el("span", { class: "badge reason" }, `${row.stage}: ${row.reason}`));
  for (const flag of row.flags || []) badges.push(el("span", { class: "badge flag" }, flag));
  const facts = [row.margin !== null && row.margin !== undefined ? `margin ${fmt(row.margin)}` : "",
    row.agreement !== null && row.agreement !== undefined ? `agreement ${fmt(row.agreement)}` : "",
    row.split || ""].filter(Boolean).join(" · ");
  const item = el("li", { "data-pos": pos, class: pos === state.pos ? "current" : null },
    el("div", null, badges, row.snippet || "(no text)"), el("div", { class: "meta" }, facts));
  item.addEventListener("click", () => select(pos));
  return item;
}

async function select(pos) {
  if (pos < 0 || (state.total && pos >= state.total)) return;
  const offset = Math.floor(pos / PAGE) * PAGE;
  if (offset !== state.offset) await loadPage(offset);
  state.pos = pos;
  for (const li of $("rows").children) li.classList.toggle("current", Number(li.dataset.pos) === pos);
  const current = $("rows").querySelector("li.current");
  if (current) current.scrollIntoView({ block: "nearest" });
  const row = state.rows[pos - state.offset];
  if (!row) { renderEmpty(); return; }
  state.view = await api("/api/row/" + row.row);
  renderView();
}

function renderEmpty() {
  state.view = null;
  $("status").textContent = "No rows match these filters.";
  $("pair").replaceChildren();
}

function prompt(messages) {
  // the last two turns in view; earlier ones folded (p opens them), so both answers are near the top
  if (!Array.isArray(messages) || messages.length <= 2) return turns(messages);
  const earlier = messages.slice(0, -2);
  const fold = el("details", { id: "earlier", open: state.openEarlier || null },
    el("summary", null, `${earlier.length} earlier turns (p)`), turns(earlier));
  fold.addEventListener("toggle", () => { state.openEarlier = fold.open; });
  return [fold, ...turns(messages.slice(-2))];
}

function turns(messages) {
  if (!Array.isArray(messages)) return [el("div", { class: "turn" }, JSON.stringify(messages))];
  return messages.map((m) => el("div", { class: "turn " + m.role }, el("span", { class: "role" }, m.role),
    m.content));
}

function renderView() {
  const v = state.view;
  const decision = v.decision && v.decision.decision;
  $("status").replaceChildren(`${state.pos + 1} of ${state.total} · `, v.kind === "pair" ? "pair " : "dropped row ",
    el("code", null, v.pair_id || ""),
    decision ? el("span", { class: "badge " + decision, id: "decision" }, decisionText(v.decision)) : "");
  $("actions").hidden = v.kind !== "pair";
  $("message").textContent = "";
  $("pair").replaceChildren(...(v.kind === "pair" ? pairView(v) : droppedView(v)));
}

function decisionText(d) {
  const words = { accept: "accepted", swap: "swapped: rejected is better", drop: "dropped" };
  return words[d.decision] + (d.reason ? `: ${d.reason}` : "");
}

function side(name, messages, score, preferred) {
  return el("div", { class: `side ${name}${preferred ? " preferred" : ""}`, "data-side": name },
    el("h3", null, `${name} · score ${fmt(score, 1)}`), turns(messages));
}

function pairView(v) {
  const p = v.pair;
  const decision = v.decision && v.decision.decision;
  const out = [el("h2", null, "Prompt"), ...prompt(p.prompt),
    el("div", { class: "sides" }, side("chosen", p.chosen, p.chosen_score, decision === "accept"),
      side("rejected", p.rejected, p.rejected_score, decision === "swap")),
    el("div", { class: "facts" },
      el("span", null, el("b", null, "margin "), fmt(p.margin)),
      el("span", null, el("b", null, "agreement "), fmt(p.agreement)),
      el("span", null, el("b", null, "confidence "), fmt(p.confidence)),
      el("span", null, el("b", null, "longer "), v.side),
      el("span", null, el("b", null, "split "), v.split || "–"),
      el("span", null, el("b", null, "judges "), (p.judges || []).join(", ") || "–"),
      el("span", null, el("b", null, "source "), p.source || "–"))];
  if (v.decision && v.decision.note) out.push(el("p", { class: "note" }, el("b", null, "Notes: "), v.decision.note));
  out.push(el("h2", null, "Validation checks on this row"));
  out.push(v.checks.length ? el("ul", { class: "checks" }, v.checks.map((c) => el("li", null,
    el("b", null, c.check), ` (${c.flag})`, c.message ? ` · dataset: ${c.message}` : ""))) :
    el("p", null, "No row-level check flagged this pair."));
  out.push(...verdictTable(v.verdicts, ["chosen", "rejected"]));
  return out;
}

function verdictTable(verdicts, names) {
  if (!verdicts || !verdicts.length) return [el("h2", null, "Judges"), el("p", null, "No judge verdicts for this row.")];
  const head = el("tr", null, ["judge", "order", "shown first", "verdict", ...names.map((n) => "score " + n),
    "confidence", "rationale (r: raw answer)"].map((h) => el("th", null, h)));
  const rows = verdicts.map((j) => el("tr", null,
    el("td", null, j.judge), el("td", null, j.order || "–"), el("td", null, j.first || "–"),
    el("td", null, j.winner || (j.parse_ok === false ? "unreadable" : "none")),
    ...names.map((n) => el("td", null, fmt((j.scores || {})[n], 1))),
    el("td", null, fmt(j.confidence)),
    el("td", { class: "text" }, j.rationale || "", j.error ? el("div", null, "error: ", j.error) : "",
      el("div", { class: j.parse_ok === false ? "raw shown" : "raw" }, j.raw || ""))));
  return [el("h2", null, "Judges"), el("table", { class: "verdicts" }, el("thead", null, head), el("tbody", null, rows))];
}

function droppedView(v) {
  const out = [el("p", null, el("b", null, "Dropped at "), v.stage, el("b", null, " for "), v.reason),
    el("p", null, v.detail || "")];
  if (v.pair) {
    out.push(el("h2", null, "Prompt"), ...prompt(v.pair.prompt),
      el("div", { class: "sides" }, side("chosen", v.pair.chosen, null, false),
        side("rejected", v.pair.rejected, null, false)));
  }
  if (v.answers) {
    out.push(el("div", { class: "sides" },
      el("div", { class: "side" }, el("h3", null, "answer a"), el("div", { class: "turn" }, v.answers.a || "")),
      el("div", { class: "side" }, el("h3", null, "answer b"), el("div", { class: "turn" }, v.answers.b || ""))));
    out.push(...verdictTable(v.verdicts, ["a", "b"]));
  }
  out.push(el("h2", null, "Record"), el("pre", { class: "record" }, v.record || ""));
  return out;
}

async function decide(decision, text) {
  const v = state.view;
  if (!v || v.kind !== "pair") return;
  const body = { pair_id: v.pair_id, decision };
  if (decision === "drop") body.reason = text;
  if (decision === "note") body.note = text;
  try {
    const answer = await api("/api/decide", {
      method: "POST", headers: { "Content-Type": "application/json", "X-Review-Token": token },
      body: JSON.stringify(body),
    });
    showCounts(answer.meta);
    v.decision = answer.decision;
    const row = state.rows[state.pos - state.offset];
    if (row) row.decision = answer.decision ? answer.decision.decision : null;
    if (["accept", "swap", "drop"].includes(decision)) return next();
    renderView();
    renderList();
  } catch (error) {
    $("message").textContent = "Not saved: " + error.message;
  }
}

async function next() {
  // a filter on decisions may drop the decided row from the list: reload the page, keep the position
  state.offset = -1;
  await select(Math.min(state.pos + ($("f-decision").value === "none" ? 0 : 1), Math.max(state.total - 1, 0)));
}

function ask(kind) {
  if (!state.view || state.view.kind !== "pair") return;
  state.asking = kind;
  $("ask-label").textContent = kind === "drop" ? "Why drop it?" : "Note:";
  $("ask").hidden = false;
  $("ask-text").value = "";
  $("ask-text").focus();
}

function closeAsk() {
  state.asking = null;
  $("ask").hidden = true;
  $("ask-text").blur();
}

let finished = 0;
async function run(action) {
  // each key's work, in order; body[data-done] counts finished actions (tests wait on it)
  try { await action(); } finally { document.body.dataset.done = String(++finished); }
}

function onKey(event) {
  if (event.target === $("ask-text")) {
    if (event.key === "Escape") closeAsk();
    return;
  }
  if (event.target.closest && event.target.closest("nav")) return;  // typing in a filter
  if (event.metaKey || event.ctrlKey || event.altKey) return;
  const actions = {
    j: () => select(state.pos + 1), ArrowDown: () => select(state.pos + 1),
    k: () => select(state.pos - 1), ArrowUp: () => select(state.pos - 1),
    a: () => decide("accept"), s: () => decide("swap"), d: () => ask("drop"), n: () => ask("note"),
    u: () => decide("clear"), r: () => document.body.classList.toggle("show-raw"),
    p: () => { const fold = $("earlier"); if (fold) fold.open = !fold.open; },
    "?": () => { $("help").hidden = !$("help").hidden; },
    Escape: () => { $("help").hidden = true; },
  };
  if (actions[event.key]) {
    event.preventDefault();
    run(actions[event.key]);
  }
}

function wire() {
  document.addEventListener("keydown", onKey);
  $("ask").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("ask-text").value.trim();
    const kind = state.asking;
    closeAsk();
    run(() => (text ? decide(kind, text) : null));
  });
  for (const button of document.querySelectorAll("#actions button")) {
    const act = button.dataset.act;
    button.addEventListener("click", () => (act === "drop" || act === "note" ? ask(act) : decide(act)));
  }
  for (const name of FILTERS) {
    $("f-" + name).addEventListener("change", () => run(async () => {
      state.offset = -1;
      await loadPage(0);
      if (state.total) await select(0); else renderEmpty();
    }));
  }
  $("page-prev").addEventListener("click", () => select(Math.max(state.offset - PAGE, 0)));
  $("page-next").addEventListener("click", () => select(state.offset + PAGE));
  $("help-button").addEventListener("click", () => { $("help").hidden = !$("help").hidden; });
}

async function start() {
  wire();
  await loadMeta();
  await loadPage(0);
  if (state.total) await select(0); else renderEmpty();
  document.body.dataset.ready = "1";  // for tests and screen readers: the first row is shown
}

start().catch((error) => { $("message").textContent = "Could not load: " + error.message; });
