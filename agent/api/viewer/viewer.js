// SemCoder run viewer: the list of runs, one run's steps and eval reports, read from the /v1 API with the token the
// page was given.
// Everything shown comes from untrusted text (code under test, model output, test names): it only ever reaches the
// page as textContent or attribute values set through the DOM, never as HTML.
"use strict";

(() => {
  const TOKEN_KEY = "semcoder.token";
  const LIST_POLL_MS = 2000;
  const main = document.getElementById("main");
  const conn = document.getElementById("conn");
  const forget = document.getElementById("forget");
  let current = null; // the page shown: {stop()}

  class Unauthorized extends Error {}

  // ---- DOM helpers (text only) ----
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }
  const SVG_NS = "http://www.w3.org/2000/svg";
  function svg(tag, attrs, ...children) { // like el(), in the SVG namespace (text only, too)
    const node = document.createElementNS(SVG_NS, tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
    for (const child of children.flat(Infinity)) {
      if (child !== undefined && child !== null) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }
  const pct = (fraction) => `${(100 * fraction).toFixed(1)}%`;
  const safeClass = (text) => String(text).replace(/[^A-Za-z0-9_-]/g, "");
  const when = (unix) => (unix ? new Date(unix * 1000).toLocaleString() : "");
  const secs = (s) => (typeof s === "number" ? `${s.toFixed(s < 10 ? 2 : 1)} s` : "");

  // ---- the token and the API ----
  const token = () => sessionStorage.getItem(TOKEN_KEY) || "";

  async function api(path, options = {}) {
    const headers = { ...(options.headers || {}) };
    if (token()) headers.Authorization = `Bearer ${token()}`;
    const response = await fetch(path, { ...options, headers, cache: "no-store" });
    if (response.status === 401) throw new Unauthorized("token refused");
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      const detail = typeof body.detail === "string" ? body.detail
        : Array.isArray(body.detail) ? body.detail.map((d) => d.msg).join("; ") : "";
      throw new Error(`${path}: HTTP ${response.status}${detail ? `: ${detail}` : ""}`);
    }
    return response;
  }

  function showLogin(message) {
    stopPage();
    forget.hidden = true;
    const form = document.getElementById("login-template").content.firstElementChild.cloneNode(true);
    main.replaceChildren(form);
    main.dataset.page = "login";
    form.querySelector("#login-error").textContent = message || "";
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      sessionStorage.setItem(TOKEN_KEY, form.querySelector("#token").value.trim());
      try {
        await api("/v1/repairs?limit=1");
        route();
      } catch (error) {
        sessionStorage.removeItem(TOKEN_KEY);
        form.querySelector("#login-error").textContent =
          error instanceof Unauthorized ? "The server refused this token." : String(error.message || error);
      }
    });
    form.querySelector("#token").focus();
  }

  forget.addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    showLogin("Token forgotten.");
  });

  // Errors of a page: a refused token asks for one; anything else is shown in `where`.
  function failed(error, where) {
    if (error instanceof Unauthorized) {
      sessionStorage.removeItem(TOKEN_KEY);
      showLogin(token() ? "The server refused this token." : "");
      return;
    }
    if (error && error.name === "AbortError") return;
    if (where) where.textContent = `error: ${error.message || error}`;
  }

  // ---- routing: #/ (runs), #/runs/<id> and #/reports/<name> ----
  function stopPage() {
    if (current) current.stop();
    current = null;
  }

  function route() {
    stopPage();
    for (const key of Object.keys(main.dataset)) delete main.dataset[key];
    forget.hidden = !token();
    const hash = location.hash || "#/";
    const run = hash.match(/^#\/runs\/([A-Za-z0-9_-]{1,64})$/);
    const report = hash.match(/^#\/reports\/([A-Za-z0-9_][A-Za-z0-9._-]{0,127})$/);
    current = run ? runPage(run[1]) : report ? reportPage(report[1]) : listPage();
  }

  // ---- the list of runs ----
  const RUN_COLUMNS = ["Run", "Status", "Origin", "Kind", "Target", "Model", "Iterations", "Tests", "Created", "Stop reason"];

  function listPage() {
    let stopped = false;
    let timer = null;
    const note = el("p", { id: "list-status", class: "muted" }, "loading…");
    const body = el("tbody", { id: "runs-body" });
    const reportsBox = el("section", { id: "reports", hidden: true });
    main.replaceChildren(el("h1", {}, "Runs"), note,
      el("table", { id: "runs", class: "grid" }, el("thead", {}, el("tr", {}, RUN_COLUMNS.map((h) => el("th", {}, h)))),
        body), reportsBox);
    main.dataset.page = "runs";
    conn.textContent = "";

    async function refresh() {
      try {
        const data = await (await api("/v1/repairs?limit=200")).json();
        if (stopped) return;
        body.replaceChildren(...data.repairs.map(runRow));
        note.textContent = `${data.repairs.length} run(s), refreshed ${new Date().toLocaleTimeString()}`;
        main.dataset.loaded = "1";
      } catch (error) {
        failed(error, note);
        if (error instanceof Unauthorized) return;
      }
      if (!stopped) timer = setTimeout(refresh, LIST_POLL_MS);
    }
    refresh();
    listReports(reportsBox);
    return { stop() { stopped = true; clearTimeout(timer); } };
  }

  // ---- eval reports: the list (on the runs page) and one report (#/reports/<name>) ----
  const REPORT_COLUMNS = ["Report", "Benchmark", "Model", "Tasks", "Samples/task", "Rounds", "pass@1 first → last",
    "Written"];

  async function listReports(box) {
    try {
      const data = await (await api("/v1/reports")).json();
      if (!data.configured) return;
      box.hidden = false;
      box.replaceChildren(el("h2", {}, "Eval reports"),
        data.reports.length ? el("table", { id: "reports-table", class: "grid" },
          el("thead", {}, el("tr", {}, REPORT_COLUMNS.map((h) => el("th", {}, h)))),
          el("tbody", {}, data.reports.map(reportRow)))
          : el("p", { class: "muted" }, "No report folders in the server's reports directory yet."),
        uploadForm());
    } catch (error) {
      failed(error, box);
    }
  }

  // A `semcoder eval --out DIR` folder made elsewhere: its report.json (and tasks.jsonl, for the task grid) are read
  // here and posted to /v1/reports, which validates them and keeps them as a new folder beside the others.
  function uploadForm() {
    const files = el("input", { id: "upload-files", type: "file", multiple: true, accept: ".json,.jsonl" });
    const name = el("input", { id: "upload-name", type: "text", size: 24, placeholder: "name", pattern:
      "[A-Za-z0-9_][A-Za-z0-9._\\-]{0,127}", required: true });
    const note = el("span", { id: "upload-status", class: "muted" });
    files.addEventListener("change", () => {
      const folder = files.files.length && files.files[0].webkitRelativePath.split("/")[0];
      if (!name.value && folder) name.value = folder;
    });
    async function submit(event) {
      event.preventDefault();
      const chosen = [...files.files];
      const reportFile = chosen.find((f) => f.name === "report.json") || chosen.find((f) => f.name.endsWith(".json"));
      const tasksFile = chosen.find((f) => f.name.endsWith(".jsonl"));
      if (!reportFile) { note.textContent = "choose the folder's report.json (and tasks.jsonl)"; return; }
      note.textContent = "uploading…";
      try {
        const report = JSON.parse(await reportFile.text());
        const tasks = tasksFile ? (await tasksFile.text()).split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l)) : [];
        await api("/v1/reports", { method: "POST", headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ name: name.value, report, tasks }) });
        location.hash = `#/reports/${encodeURIComponent(name.value)}`;
      } catch (error) {
        if (error instanceof Unauthorized) { showLogin("The token was refused."); return; }
        note.textContent = `not uploaded: ${error.message}`;
        note.className = "error";
      }
    }
    return el("details", { id: "upload" }, el("summary", {}, "Upload a report"),
      el("form", { id: "upload-form", onsubmit: submit },
        el("label", {}, "report.json and tasks.jsonl of a semcoder eval --out folder ", files), " ",
        el("label", {}, "as ", name), " ", el("button", { type: "submit" }, "Upload"), " ", note));
  }

  function reportRow(entry) {
    const link = el("a", { href: `#/reports/${encodeURIComponent(entry.name)}` }, entry.name);
    const r = entry.report;
    if (!r) return el("tr", { class: "report", "data-report": entry.name }, el("td", {}, entry.name),
      el("td", { colspan: REPORT_COLUMNS.length - 1, class: "error" }, entry.error || "unreadable"));
    const rounds = r.rounds || [];
    const curve = rounds.length ? `${pct(rounds[0].pass_at_1)} → ${pct(rounds[rounds.length - 1].pass_at_1)}` : "";
    return el("tr", { class: "report", "data-report": entry.name }, el("td", {}, link), el("td", {}, r.benchmark),
      el("td", {}, r.model), el("td", { class: "num" }, r.n_tasks), el("td", { class: "num" }, r.n_samples_per_task),
      el("td", { class: "num" }, rounds.length), el("td", {}, curve), el("td", {}, when(entry.modified)));
  }

  function reportPage(name) {
    let stopped = false;
    const header = el("section", { id: "report-header" }, el("h1", {}, "Report ", name));
    const chartBox = el("section", { id: "report-chart" });
    const gridBox = el("section", { id: "report-grid" });
    const taskBox = el("section", { id: "report-task" });
    main.replaceChildren(el("p", {}, el("a", { href: "#/" }, "← runs and reports")), header,
      el("div", { class: "report-columns" }, el("div", {}, chartBox, gridBox), taskBox));
    main.dataset.page = "report";
    main.dataset.report = name;
    conn.textContent = "";
    (async () => {
      try {
        const data = await (await api(`/v1/reports/${encodeURIComponent(name)}`)).json();
        if (stopped) return;
        const r = data.report;
        header.replaceChildren(el("h1", {}, "Report ", name), el("dl", { class: "facts" },
          [["Benchmark", r.benchmark], ["Model", r.model], ["Tasks", r.n_tasks], ["Samples per task",
            r.n_samples_per_task], ["Feedback", r.feedback], ["Dialect", r.dialect]]
            .map(([k, v]) => [el("dt", {}, k), el("dd", {}, v)])));
        renderChart(chartBox, r);
        renderGrid(gridBox, data, (taskId, round) => showTask(taskBox, name, taskId, round, () => stopped));
        main.dataset.loaded = "1";
      } catch (error) {
        failed(error, header);
      }
    })();
    return { stop() { stopped = true; } };
  }

  // pass@1 per round (and pass@k for the k the report has, k > 1: dashed): an inline SVG line chart (0–100 %), and
  // the same numbers as a table.
  function reportedKs(report) {
    const rounds = report.rounds || [];
    if (!rounds.length) return [];
    return Object.keys(rounds[0].pass_at_k || {}).map(Number)
      .filter((k) => k > 1 && rounds.every((r) => r.pass_at_k && String(k) in r.pass_at_k)).sort((a, b) => a - b);
  }

  function renderChart(box, report) {
    const rounds = report.rounds || [];
    const ks = reportedKs(report);
    const W = 520, H = 260, left = 48, right = 70, top = 20, bottom = 40;
    const x = (i) => left + (rounds.length > 1 ? (i * (W - left - right)) / (rounds.length - 1) : (W - left - right) / 2);
    const y = (fraction) => top + (1 - fraction) * (H - top - bottom);
    const grid = [0, 0.25, 0.5, 0.75, 1].map((f) => [
      svg("line", { x1: left, x2: W - right, y1: y(f), y2: y(f), class: "axis-grid" }),
      svg("text", { x: left - 6, y: y(f) + 4, class: "axis-label", "text-anchor": "end" }, `${100 * f}%`)]);
    const atK = (r, k) => (k === 1 ? r.pass_at_1 : r.pass_at_k[String(k)]);
    const series = [1, ...ks].map((k) => {
      const value = (r) => atK(r, k);
      // pass@1's points are `g.point` (labelled); the others `g.point-k`, labelled only at their last round.
      const points = rounds.map((r, i) => svg("g", { class: k === 1 ? "point" : "point-k", "data-k": k,
        "data-round": r.round, "data-pass": value(r) },
      svg("circle", { cx: x(i), cy: y(value(r)), r: k === 1 ? 4 : 3 },
        svg("title", {}, `round ${r.round}: pass@${k} ${pct(value(r))}`)),
      k === 1 || i === rounds.length - 1 ? svg("text", { x: k === 1 ? x(i) : x(i) + 8, y: k === 1 ? y(value(r)) - 9
        : y(value(r)) + 4, "text-anchor": k === 1 ? "middle" : "start", class: "point-label" },
      k === 1 ? pct(value(r)) : `pass@${k}`) : null));
      const line = svg("polyline", { class: k === 1 ? "curve" : "curve curve-k", "data-k": k, fill: "none",
        points: rounds.map((r, i) => `${x(i)},${y(value(r))}`).join(" ") });
      return [line, points];
    });
    const rounds_axis = rounds.map((r, i) => svg("text", { x: x(i), y: H - bottom + 18, "text-anchor": "middle",
      class: "axis-label" }, r.round));
    const chart = svg("svg", { id: "passk-chart", viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img",
      "aria-label": [1, ...ks].map((k) => `pass@${k} per refinement round: ${rounds.map((r) =>
        `round ${r.round} ${pct(atK(r, k))}`).join(", ")}`).join("; ") },
    grid, series, rounds_axis,
    svg("text", { x: (left + W - right) / 2, y: H - 6, "text-anchor": "middle", class: "axis-label" }, "refinement round"));
    const table = el("table", { id: "passk-table", class: "grid compact" },
      el("thead", {}, el("tr", {}, ["Round", "pass@1", ...ks.map((k) => `pass@${k}`), "Solved tasks",
        "Refined samples"].map((h) => el("th", {}, h)))),
      el("tbody", {}, rounds.map((r) => el("tr", { "data-round": r.round },
        el("td", { class: "num" }, r.round), el("td", { class: "num" }, pct(r.pass_at_1)),
        ks.map((k) => el("td", { class: "num" }, pct(atK(r, k)))),
        el("td", { class: "num" }, r.solved_tasks), el("td", { class: "num" }, r.refined_samples)))));
    box.replaceChildren(el("h2", {}, ks.length ? `pass@1 and pass@${ks.join(", pass@")} per round` : "pass@1 per round"),
      chart, table);
  }

  // Task × round: each cell pass / fail / k of n, colored and labelled in text.
  function renderGrid(box, data, onPick) {
    if (!data.has_tasks) {
      box.replaceChildren(el("h2", {}, "Tasks"), el("p", { class: "muted", id: "no-tasks" },
        "This report has no per-task outcomes (tasks.jsonl: written by semcoder eval since the report page exists)."));
      return;
    }
    const rounds = (data.report.rounds || []).map((r) => r.round);
    const rows = data.tasks.map((task) => el("tr", { class: "task", "data-task": task.task_id },
      el("th", { scope: "row" }, el("button", { type: "button", class: "task-link",
        onclick: () => onPick(task.task_id, null) }, task.task_id)),
      task.rounds.map((cell) => {
        const kind = cell.passed === cell.samples ? "pass" : cell.passed === 0 ? "fail" : "partial";
        const label = cell.samples === 1 ? kind : `${cell.passed}/${cell.samples}`;
        return el("td", { class: `cell cell-${kind}`, "data-round": cell.round, "data-outcome": kind,
          title: `${task.task_id}, round ${cell.round}: ${cell.passed} of ${cell.samples} sample(s) pass`,
          onclick: () => onPick(task.task_id, cell.round) }, label);
      })));
    box.replaceChildren(el("h2", {}, "Tasks ", el("span", { class: "muted" }, "(click a task for its samples)")),
      el("table", { id: "task-grid", class: "grid compact" },
        el("thead", {}, el("tr", {}, el("th", {}, "Task"), rounds.map((r) => el("th", { class: "num" }, `round ${r}`)))),
        el("tbody", {}, rows)));
  }

  async function showTask(box, name, taskId, round, isStopped) {
    box.replaceChildren(el("p", { class: "muted" }, `loading ${taskId}…`));
    try {
      const task = await (await api(`/v1/reports/${encodeURIComponent(name)}/task?task_id=${encodeURIComponent(taskId)}`)).json();
      if (isStopped()) return;
      const shown = round === null ? task.rounds : task.rounds.filter((r) => r.round === round);
      box.replaceChildren(el("h2", { id: "task-title" }, task.task_id),
        ...shown.map((r) => el("div", { class: "task-round", "data-round": r.round },
          el("h3", {}, `Round ${r.round}`),
          r.samples.map((s, i) => sampleBlock(s, i)))));
      box.dataset.task = task.task_id;
    } catch (error) {
      failed(error, box);
    }
  }

  function sampleBlock(sample, index) {
    const failing = sample.failing_input;
    return el("div", { class: `sample ${sample.passed ? "sample-pass" : "sample-fail"}`, "data-sample": index },
      el("div", { class: "sample-head" }, `sample ${index}: `,
        el("span", { class: `outcome ${sample.passed ? "outcome-good" : "outcome-bad"}` }, sample.passed ? "passes" : "fails"),
        sample.detail ? el("span", { class: "muted sample-detail" }, ` (${sample.detail})`) : null),
      el("div", { class: "sample-columns" },
        el("div", {}, el("h4", {}, "Generation"), el("pre", { class: "block program" }, sample.program)),
        el("div", {}, el("h4", {}, "Failing input"), failing
          ? el("pre", { class: "block failing-input" }, `retv = ${failing.call}\nassert retv == ${failing.expected}`)
          : el("p", { class: "muted no-failing-input" }, sample.passed ? "none: it passes"
            : "not recorded (the last round, or no benchmark assert to show)"))));
  }

  function runRow(run) {
    const link = el("a", { href: `#/runs/${encodeURIComponent(run.id)}` }, run.id);
    return el("tr", { class: "run", "data-run-id": run.id, "data-status": run.status },
      el("td", {}, link),
      el("td", {}, el("span", { class: `status status-${safeClass(run.status)}` }, run.status)),
      el("td", {}, run.origin), el("td", {}, run.kind), el("td", { class: "target" }, run.target),
      el("td", { class: "model" }, run.model), el("td", { class: "num" }, run.iterations), el("td", { class: "num" }, `${run.tests_passed}/${run.tests_total}`),
      el("td", {}, when(run.created)), el("td", { class: "reason" }, run.stop_reason));
  }

  // ---- one run ----
  function runPage(id) {
    const controller = new AbortController();
    const state = { row: null, nodes: [], lastId: 0, done: null, expanded: new Set(), rowTimer: null };
    let stopped = false;
    const header = el("section", { id: "run-header" }, el("h1", {}, "Run ", id));
    const timeline = el("ol", { id: "timeline" });
    const sections = {
      suspects: el("section", { id: "suspects" }),
      focus: el("section", { id: "focus" }),
      answers: el("section", { id: "answers" }),
      candidates: el("section", { id: "candidates" }),
      final: el("section", { id: "final" }),
    };
    main.replaceChildren(el("p", {}, el("a", { href: "#/" }, "← all runs")), header,
      el("div", { class: "columns" },
        el("section", { class: "timeline-box" }, el("h2", {}, "Timeline"), timeline),
        el("div", { class: "details" }, sections.final, sections.suspects, sections.focus, sections.answers,
          sections.candidates)));
    main.dataset.page = "run";
    main.dataset.runId = id;
    delete main.dataset.done;

    async function loadRow() {
      try {
        state.row = await (await api(`/v1/repairs/${encodeURIComponent(id)}`)).json();
        if (!stopped) { renderHeader(header, state); renderFinal(sections.final, state); }
      } catch (error) {
        failed(error, header);
      }
    }
    function rowSoon() { // the row (status, diff) after events, at most once a second
      if (state.rowTimer === null) state.rowTimer = setTimeout(() => { state.rowTimer = null; loadRow(); }, 300);
    }

    function onEvent(event) {
      state.lastId = Math.max(state.lastId, event.id);
      if (event.type === "node") {
        state.nodes.push(event);
        renderSteps(timeline, sections, state);
      } else if (event.type === "done") {
        state.done = event.data;
        main.dataset.done = "1";
      }
      rowSoon();
    }

    (async () => {
      await loadRow();
      while (!stopped && !state.done) {
        conn.textContent = "live";
        try {
          await follow(id, state.lastId, onEvent, controller.signal);
        } catch (error) {
          failed(error, conn);
          if (error instanceof Unauthorized || stopped) return;
        }
        if (!state.done && !stopped) await new Promise((resolve) => setTimeout(resolve, 2000)); // then resume
      }
      if (!stopped) { conn.textContent = "ended"; loadRow(); }
    })();
    return {
      stop() { stopped = true; controller.abort(); clearTimeout(state.rowTimer); conn.textContent = ""; },
    };
  }

  // The run's Server-Sent Events through fetch (EventSource cannot send the Authorization header).
  async function follow(id, after, onEvent, signal) {
    const response = await api(`/v1/repairs/${encodeURIComponent(id)}/events?after=${after}`,
      { signal, headers: { Accept: "text/event-stream" } });
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value.replace(/\r\n?/g, "\n");
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const fields = { data: [] };
        for (const line of block.split("\n")) {
          const colon = line.indexOf(":");
          if (colon <= 0) continue; // comments (": keep-alive") and blank names
          const name = line.slice(0, colon);
          const text = line.slice(colon + 1).replace(/^ /, "");
          if (name === "data") fields.data.push(text);
          else fields[name] = text;
        }
        if (fields.id === undefined || !fields.event) continue;
        onEvent({ id: Number(fields.id), type: fields.event, data: JSON.parse(fields.data.join("\n") || "null") });
      }
    }
  }

  function renderHeader(header, state) {
    const run = state.row;
    const facts = [
      ["Status", el("span", { id: "run-status", class: `status status-${safeClass(run.status)}` }, run.status)],
      ["Target", run.target], ["Kind", run.kind], ["Origin", run.origin], ["Model", run.model],
      ["Iterations", run.iterations], ["Candidates tested", run.executions],
      ["Tests", el("span", { id: "run-tests" }, `${run.tests_passed}/${run.tests_total}`)],
      ["Created", when(run.created)], ["Stop reason", run.stop_reason || "—"],
    ];
    header.replaceChildren(el("h1", {}, "Run ", run.id),
      el("dl", { class: "facts" }, facts.map(([name, value]) => [el("dt", {}, name), el("dd", {}, value)])));
  }

  function renderFinal(section, state) {
    const diff = state.row.diff || "";
    const note = el("span", { class: "muted", id: "copy-note" });
    const copy = el("button", { type: "button", id: "copy-diff", disabled: !diff }, "Copy diff");
    copy.addEventListener("click", () => copyText(diff, note));
    section.replaceChildren(el("h2", {}, "Best diff ", copy, " ", note),
      diff ? diffBlock(diff, "final-diff") : el("p", { class: "muted", id: "final-diff" }, "no diff yet"));
  }

  async function copyText(text, note) {
    try {
      await navigator.clipboard.writeText(text);
      note.textContent = "copied";
    } catch {
      const area = el("textarea", { class: "offscreen" });
      area.value = text;
      document.body.append(area);
      area.select();
      const ok = document.execCommand && document.execCommand("copy");
      area.remove();
      note.textContent = ok ? "copied" : "copy failed: select the text instead";
    }
  }

  function diffBlock(diff, id) {
    return el("pre", { class: "diff", id }, diff.split("\n").map((line) => {
      const kind = line.startsWith("+++") || line.startsWith("---") ? "file"
        : line.startsWith("@@") ? "hunk" : line.startsWith("+") ? "add" : line.startsWith("-") ? "del" : "ctx";
      return el("span", { class: `d-${kind}` }, line, "\n");
    }));
  }

  // ---- the steps: timeline, suspects, the focus test's trace, answers, candidates ----
  function renderSteps(timeline, sections, state) {
    timeline.replaceChildren(...state.nodes.map(stepItem));
    const traces = state.nodes.filter((e) => e.data.node === "trace");
    const reasons = state.nodes.filter((e) => e.data.node === "reason" && (e.data.detail || {}).answers);
    renderSuspects(sections.suspects, traces[traces.length - 1]);
    renderFocus(sections.focus, traces[traces.length - 1], state);
    renderAnswers(sections.answers, reasons[reasons.length - 1]);
    renderCandidates(sections.candidates, state.nodes);
  }

  function stepItem(event) {
    const d = event.data;
    const node = String(d.node || "?");
    const best = d.best ? `best ${d.best.passed}/${d.best.total}` : "";
    let summary = "";
    if (node === "execute") {
      const tested = d.tested || [];
      summary = tested.length === 1 ? `${tested[0].origin}: ${tested[0].passed}/${tested[0].total}`
        : `${tested.length} candidates tested` +
          (tested.length ? `, top ${Math.max(...tested.map((t) => t.passed))}/${tested[0].total}` : "");
    } else if (node === "trace") {
      summary = `${d.test || ""} → ${d.focus || ""}`;
    } else if (node === "reason") {
      summary = `${((d.detail || {}).answers || []).length} answer(s)`;
    } else if (node === "patch") {
      summary = `${(d.candidates || []).length} candidate(s)` + ((d.rejected || []).length ? `, ${d.rejected.length} rejected` : "");
    }
    return el("li", { class: `step step-${safeClass(node)}`, "data-node": node, "data-event-id": event.id },
      el("span", { class: "iter" }, `#${d.iteration ?? ""}`), " ",
      el("span", { class: "node" }, node), " ",
      el("span", { class: "secs" }, secs(d.seconds)), " ",
      el("span", { class: "best" }, best),
      summary ? el("div", { class: "summary" }, summary) : null);
  }

  function renderSuspects(section, trace) {
    const detail = trace ? trace.data.detail || {} : {};
    const suspects = detail.suspects || (trace ? trace.data.top : null) || [];
    if (!suspects.length) { section.replaceChildren(); return; }
    section.replaceChildren(el("h2", {}, "Suspects"),
      el("table", { class: "grid", id: "suspects-table" },
        el("thead", {}, el("tr", {}, ["#", "Line", "Function", "Score"].map((h) => el("th", {}, h)))),
        el("tbody", {}, suspects.map((s, i) => el("tr", {},
          el("td", { class: "num" }, i + 1), el("td", {}, `${s.file}:${s.line}`), el("td", {}, s.function || ""),
          el("td", { class: "num" }, Number(s.score).toFixed(3)))))));
  }

  function renderFocus(section, trace, state) {
    if (!trace) { section.replaceChildren(); return; }
    const d = trace.data.detail || {};
    const parts = [el("h2", {}, "Focus test"),
      el("dl", { class: "facts" },
        el("dt", {}, "Test"), el("dd", { id: "focus-test" }, d.test || trace.data.test || ""),
        el("dt", {}, "Where"), el("dd", {}, `${d.file || ""}${d.function ? `::${d.function}` : ""}`),
        d.call ? [el("dt", {}, "Call"), el("dd", {}, el("code", { id: "focus-call" }, d.call))] : null,
        d.expected ? [el("dt", {}, "Expected"), el("dd", {}, el("code", { id: "focus-expected" }, d.expected))] : null)];
    if (d.test_block) parts.push(el("pre", { class: "block", id: "test-block" }, d.test_block));
    if (d.trace) {
      parts.push(el("h3", {}, "Traced values ", el("span", { class: "muted" }, "(click a line for every state)")),
        traceTable(d.trace, trace.id, state));
    } else {
      parts.push(el("p", { class: "muted", id: "no-trace" }, "No trace recorded for this step (the run's model does not "
        + "read traces and show_trace was off)."));
    }
    section.replaceChildren(...parts);
  }

  // The inline-states format: a source line, then ` # [INPUT] {...} [/INPUT]`, `[STATE-k] {...} [/STATE-k]`
  // (k in order of execution; more than three on a line: the first two, ` ... `, the last), `[OUTPUT] v [/OUTPUT]`,
  // `[EXCEPTION] e [/EXCEPTION]`.
  function splitTraceLine(line) {
    let from = 0;
    for (;;) {
      const at = line.indexOf(" # [", from);
      if (at < 0) return { code: line, notes: [] };
      const notes = parseNotes(line.slice(at + 3).trimEnd());
      if (notes) return { code: line.slice(0, at), notes };
      from = at + 1;
    }
  }

  function parseNotes(text) {
    const tag = /\[(INPUT|OUTPUT|EXCEPTION|STATE-(\d+))\] (.*?) \[\/\1\]|\s*\.\.\.\s*/y;
    const notes = [];
    while (tag.lastIndex < text.length) {
      const start = tag.lastIndex;
      const match = tag.exec(text);
      if (!match || tag.lastIndex === start) return null;
      if (match[1]) {
        notes.push({ kind: match[2] !== undefined ? "state" : match[1].toLowerCase(),
          k: match[2] !== undefined ? Number(match[2]) : null, value: match[3] });
      } else {
        notes.push({ kind: "elided", k: null, value: "…" });
      }
    }
    return notes.length ? notes : null;
  }

  function formatValues(text) {
    try {
      const value = JSON.parse(text);
      if (value && typeof value === "object" && !Array.isArray(value)) {
        return Object.entries(value).map(([k, v]) => `${k} = ${typeof v === "string" ? v : JSON.stringify(v)}`)
          .join(", ");
      }
      return typeof value === "string" ? value : JSON.stringify(value);
    } catch {
      return text;
    }
  }

  function noteText(note) {
    if (note.kind === "state") return `STATE-${note.k}: ${formatValues(note.value)}`;
    if (note.kind === "input") return `input: ${formatValues(note.value)}`;
    if (note.kind === "output") return `returns ${note.value}`;
    if (note.kind === "exception") return `raises ${note.value}`;
    return "…";
  }

  function traceTable(trace, eventId, state) {
    const rows = trace.replace(/\n$/, "").split("\n").map((line, index) => {
      const { code, notes } = splitTraceLine(line);
      const key = `${eventId}:${index + 1}`;
      const states = notes.filter((n) => n.kind === "state");
      const inline = [];
      if (states.length) inline.push(formatValues(states[states.length - 1].value));
      for (const note of notes) if (note.kind !== "state" && note.kind !== "elided") inline.push(noteText(note));
      const all = el("ol", { class: "states", hidden: !state.expanded.has(key) }, notes.map((n) =>
        el("li", { class: `note note-${n.kind}` }, noteText(n))));
      const row = el("tr", { class: notes.length ? "line traced" : "line", "data-line": index + 1,
        "data-states": states.length },
        el("td", { class: "ln" }, index + 1),
        el("td", { class: "src" }, el("code", {}, code)),
        el("td", { class: "values" }, inline.length ? el("span", { class: "inline" }, inline.join("  ·  ")) : null,
          notes.length ? all : null));
      if (notes.length) {
        row.title = notes.map(noteText).join("\n");
        row.addEventListener("click", () => {
          all.hidden = !all.hidden;
          if (all.hidden) state.expanded.delete(key); else state.expanded.add(key);
        });
      }
      return row;
    });
    return el("table", { class: "code", id: "trace-code" }, el("tbody", {}, rows));
  }

  function renderAnswers(section, reason) {
    if (!reason) { section.replaceChildren(); return; }
    const answers = reason.data.detail.answers;
    section.replaceChildren(el("h2", {}, `Model's answers (iteration ${reason.data.iteration})`),
      answers.map((text, i) => el("details", { class: "answer", open: i === 0 },
        el("summary", {}, `answer ${i + 1}`), el("pre", { class: "block" }, text))));
  }

  function renderCandidates(section, nodes) {
    const groups = [];
    nodes.forEach((event, index) => {
      if (event.data.node !== "patch") return;
      const next = nodes.slice(index + 1).find((e) => e.data.node === "execute" || e.data.node === "patch");
      const tested = next && next.data.node === "execute" ? next.data.tested || [] : null;
      const candidates = (event.data.detail || {}).candidates ||
        (event.data.candidates || []).map((origin) => ({ origin, files: [], diff: "" }));
      groups.push(el("div", { class: "iteration", "data-iteration": event.data.iteration },
        el("h3", {}, `Iteration ${event.data.iteration}`),
        (event.data.rejected || []).length ? el("p", { class: "rejected" }, "Rejected before testing: ",
          event.data.rejected.map((r) => (typeof r === "string" ? r : JSON.stringify(r))).join("; ")) : null,
        candidates.map((c) => candidateBlock(c, tested))));
    });
    section.replaceChildren(...(groups.length ? [el("h2", {}, "Candidates"), ...groups] : []));
  }

  function candidateBlock(candidate, tested) {
    const outcome = tested ? tested.find((t) => t.origin === candidate.origin) : null;
    let verdict = tested === null ? "not tested yet" : "not tested";
    let kind = "pending";
    if (outcome) {
      if (outcome.problem) { verdict = `rejected: ${outcome.problem}`; kind = "bad"; }
      else if (outcome.total && outcome.passed === outcome.total) { verdict = `passes ${outcome.passed}/${outcome.total}`; kind = "good"; }
      else { verdict = `${outcome.passed}/${outcome.total} pass`; kind = "partial"; }
      if (outcome.regressions) verdict += `, ${outcome.regressions} regression(s)`;
      if (outcome.confirmed !== undefined && outcome.confirmed !== null) verdict += `, confirmed: ${outcome.confirmed}`;
    }
    return el("div", { class: "candidate" },
      el("div", { class: "candidate-head" }, el("span", { class: "origin" }, candidate.origin), " ",
        el("span", { class: `outcome outcome-${kind}` }, verdict),
        (candidate.files || []).length ? el("span", { class: "muted" }, ` (${candidate.files.join(", ")})`) : null),
      candidate.diff ? diffBlock(candidate.diff) : null);
  }

  window.addEventListener("hashchange", route);
  route();
})();
