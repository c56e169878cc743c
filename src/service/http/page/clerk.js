// The clerk's page: a PDF in, the conclusion first, then one card per signature.
"use strict";

const state = { file: null, report: null, pages: new Map() };

function revocationUnchecked(signature) {
  return signature.checks.some((c) => c.id === "revocation" && c.outcome === "warning");
}

function conclusion(report) {
  const { el, t, pick } = kyso;
  const verdict = report.verdict;
  const box = el("div", {},
    el("h2", { class: "verdict verdict-" + verdict, id: "verdict" }, t("verdict_" + verdict)),
    el("ul", { class: "reasons" }, report.reasons.map((r) => el("li", {}, pick(r.vi, r.en)))),
  );
  const policy = report.policy;
  if (policy) {
    if (policy.conforms) {
      box.append(el("p", { class: "issued yes", id: "issued" }, t("issued_yes")));
    } else {
      const failing = policy.rules.filter((r) => r.outcome === "failed");
      box.append(el("div", { class: "issued no", id: "issued" },
        el("p", {}, t("issued_no")),
        el("ul", {}, failing.map((r) => el("li", {}, pick(r.vi, r.en))))));
    }
  }
  if (report.signatures.some(revocationUnchecked)) {
    box.append(el("p", { class: "notice", id: "revocation-notice" }, t("revocation_unchecked")));
  }
  if (report.unsigned_fields.length) {
    box.append(el("p", { class: "muted" },
      t("unsigned_fields") + ": " + report.unsigned_fields.map((f) => f.field).join(", ")));
  }
  return box;
}

function statusSentence(s) {
  const { t, pick } = kyso;
  const word = t("ind_" + s.indication);
  if (s.indication === "PASSED") return word;
  const failing = s.checks.find((c) => c.outcome === "failed")
    || s.checks.find((c) => c.outcome === "warning");
  return failing ? word + ": " + pick(failing.detail_vi, failing.detail) : word;
}

function card(s, index) {
  const { el, t, pick } = kyso;
  const number = index + 1;
  const signer = s.signer || {};
  const proven = s.validation_time && s.validation_time.proven
    && s.validation_time.source === "timestamp_token";
  const when = s.validation_time?.source === "timestamp_token" ? s.validation_time.time : s.signing_time;
  const where = s.widget && s.widget.page
    ? t("page") + " " + s.widget.page
    : t("invisible");
  const changes = s.modifications.length
    ? el("ul", {}, s.modifications.map((m) => el("li", { class: "change-" + m.verdict },
        `${m.kind} (${m.class}): ${m.rule}`)))
    : el("p", { class: "muted" }, t("no_changes"));
  const checks = el("table", { class: "checks" },
    el("tbody", {}, s.checks.map((c) => el("tr", { class: "outcome-" + c.outcome },
      el("td", {}, c.id),
      el("td", {}, t("outcome_" + c.outcome)),
      el("td", {}, pick(c.detail_vi, c.detail))))));
  const download = el("button", {
    type: "button",
    class: "download",
    onclick: () => downloadSigned(number),
  }, t("download"));
  return el("article", { class: "card signature ind-" + s.indication, "data-signature": number },
    el("header", {},
      el("h3", {}, `${t("signature")} ${number}: ${t("role_" + s.role)}`),
      el("span", { class: "badge ind-" + s.indication }, t("ind_" + s.indication))),
    el("dl", {},
      el("dt", {}, t("who")), el("dd", { class: "who" }, signer.common_name || s.name || s.field || "—"),
      el("dt", {}, t("body")), el("dd", { class: "body" }, signer.organization || "—"),
      el("dt", {}, t("when")), el("dd", { class: "when" },
        kyso.vnTime(when), " — ", el("em", {}, proven ? t("proven") : t("claimed"))),
      el("dt", {}, t("where")), el("dd", {}, where),
      el("dt", {}, t("status")), el("dd", { class: "status" }, statusSentence(s))),
    revocationUnchecked(s) ? el("p", { class: "notice" }, t("revocation_unchecked")) : null,
    el("details", {}, el("summary", {}, t("changes")), changes),
    comparison(s, number),
    el("details", {}, el("summary", {}, t("checks")), checks),
    el("p", { class: "muted" }, pick(s.role_evidence_vi, s.role_evidence)),
    download);
}

function comparison(s, number) {
  const { el, t } = kyso;
  const body = el("div", { class: "compare" });
  const page = visible(s) ? s.widget.page : 1;
  return el("details", { class: "comparison", ontoggle: (e) => {
    if (e.target.open && !body.childElementCount) compare(number, page, body);
  } }, el("summary", {}, t("compare")), body);
}

function slip(report) {
  const { el, t } = kyso;
  return el("div", {},
    el("h2", {}, t("slip_title")),
    el("p", {}, `${t("slip_file")}: ${state.file ? state.file.name : ""}`),
    el("p", {}, "SHA-256: ", el("code", {}, report.sha256)),
    el("p", {}, `${t("slip_checked")}: ${kyso.vnTime(new Date().toISOString())}`),
    el("p", {}, el("strong", {}, t("verdict_" + report.verdict))),
    el("ol", {}, report.signatures.map((s) => el("li", {},
      `${t("role_" + s.role)} — ${(s.signer && s.signer.common_name) || "—"} — `
      + `${kyso.vnTime(s.signing_time)} — ${statusSentence(s)}`))),
    el("p", {}, `${t("record")}: ${report.audit_record_id}`));
}

// Where `rect` (the page's user space) falls on a rendering, as fractions of the picture.
function placed(rendering, rect) {
  const [a, b, c, d, e, f] = rendering.transform;
  const map = (x, y) => [a * x + c * y + e, b * x + d * y + f];
  const [p, q] = [map(rect[0], rect[1]), map(rect[2], rect[3])];
  return [
    Math.min(p[0], q[0]) / rendering.width, Math.min(p[1], q[1]) / rendering.height,
    Math.max(p[0], q[0]) / rendering.width, Math.max(p[1], q[1]) / rendering.height,
  ];
}

// A box over a picture, at fractions `[x0, y0, x1, y1]` of it.
function overlay(cls, area, ...children) {
  const box = kyso.el("div", { class: cls }, ...children);
  box.style.left = (area[0] * 100) + "%";
  box.style.top = (area[1] * 100) + "%";
  box.style.width = ((area[2] - area[0]) * 100) + "%";
  box.style.height = ((area[3] - area[1]) * 100) + "%";
  return box;
}

function picture(rendering, alt, boxes) {
  const { el } = kyso;
  return el("div", { class: "figure", "data-page": rendering.page },
    el("img", { src: "data:image/png;base64," + rendering.png, alt, width: rendering.width,
      height: rendering.height }),
    boxes);
}

// Posts the document to `path` and reads the JSON answer, or shows the error.
async function post(path) {
  const response = await kyso.call(path, {
    method: "POST",
    headers: { "content-type": "application/pdf" },
    body: state.file,
  });
  if (!response.ok) throw new Error(await kyso.errorText(response));
  return response.json();
}

function visible(s) {
  const w = s.widget;
  return w && w.page && w.rect && w.rect[2] > w.rect[0] && w.rect[3] > w.rect[1];
}

// The pages that hold signatures, drawn by kyso, each signature's box outlined and labelled.
async function showWhere(report) {
  const { el, t } = kyso;
  const box = document.getElementById("where");
  const pages = [...new Set(report.signatures.filter(visible).map((s) => s.widget.page))];
  const hidden = report.signatures
    .map((s, i) => [s, i + 1]).filter(([s]) => !visible(s)).map(([, n]) => n);
  box.replaceChildren(el("h2", {}, t("where_title")));
  if (hidden.length) {
    box.append(el("p", { class: "muted" },
      `${t("signature")} ${hidden.join(", ")}: ${t("invisible")}`));
  }
  box.hidden = report.signatures.length === 0;
  if (!pages.length) return;
  const grid = el("div", { class: "pages" }, el("p", { class: "busy" }, t("drawing")));
  box.append(grid);
  const figures = [];
  try {
    for (const page of pages) {
      // Drawn once a document: a switch of language draws the boxes again, not the page.
      const rendering = state.pages.get(page) || await post(`/api/v1/pages/${page}/rendering`);
      if (state.report !== report) return;
      state.pages.set(page, rendering);
      const boxes = report.signatures.map((s, i) => [s, i + 1])
        .filter(([s]) => visible(s) && s.widget.page === page)
        .map(([s, n]) => {
          const b = overlay("box ind-" + s.indication, placed(rendering, s.widget.rect),
            el("span", {}, `${t("signature")} ${n}: ${t("role_" + s.role)}`));
          b.dataset.signature = n;
          return b;
        });
      figures.push(el("figure", {}, picture(rendering, `${t("page")} ${page}`, boxes),
        el("figcaption", {}, `${t("page")} ${page} / ${rendering.pages}`)));
    }
    grid.replaceChildren(...figures);
  } catch (e) {
    grid.replaceChildren(el("p", { class: "error" }, t("error_prefix") + ": " + e.message));
  }
}

// Signature `number`'s page as signed beside the page now, the areas that differ marked.
async function compare(number, page, into) {
  const { el, t } = kyso;
  const report = state.report;
  into.replaceChildren(el("p", { class: "busy" }, t("drawing")));
  let c;
  try {
    c = await post(`/api/v1/signatures/${number}/comparison?page=${page}`);
  } catch (e) {
    into.replaceChildren(el("p", { class: "error" }, t("error_prefix") + ": " + e.message));
    return;
  }
  if (state.report !== report) return;
  const marks = () => c.changed.map((area) => overlay("changed-area", area));
  const summary = c.signed === null ? t("compare_new_page")
    : c.changed.length ? `${c.changed.length} ${t("compare_areas")}` : t("compare_same");
  const choose = el("select", { "aria-label": t("page"),
    onchange: (e) => compare(number, Number(e.target.value), into) },
  Array.from({ length: c.now.pages }, (_, i) => el("option",
    { value: i + 1, selected: i + 1 === c.page }, `${t("page")} ${i + 1}`)));
  into.replaceChildren(
    el("div", { class: "compare-head" }, choose,
      el("p", { class: c.changed.length ? "compare-summary differs" : "compare-summary same" },
        summary)),
    el("div", { class: "side-by-side" },
      el("figure", {}, c.signed
        ? picture(c.signed, t("compare_signed"), marks())
        : el("p", { class: "muted" }, t("compare_new_page")),
      el("figcaption", {}, t("compare_signed"))),
      el("figure", {}, picture(c.now, t("compare_now"), marks()),
        el("figcaption", {}, t("compare_now")))));
}

function draw() {
  const report = state.report;
  if (!report) return;
  document.getElementById("conclusion").replaceChildren(conclusion(report));
  document.getElementById("signatures").replaceChildren(...report.signatures.map(card));
  document.getElementById("record-id").textContent = report.audit_record_id;
  document.getElementById("slip").replaceChildren(slip(report));
  document.getElementById("result").hidden = false;
  showWhere(report);
}

function showError(text) {
  const e = document.getElementById("error");
  e.textContent = text ? kyso.t("error_prefix") + ": " + text : "";
  e.hidden = !text;
}

function query() {
  const q = new URLSearchParams({ lang: kyso.lang, expect: document.getElementById("expect").value });
  const number = document.getElementById("number").value.trim();
  if (number) q.set("document_number", number);
  return q.toString();
}

async function verify(file) {
  state.file = file;
  state.report = null;
  state.pages = new Map();
  document.getElementById("result").hidden = true;
  showError("");
  const busy = document.getElementById("busy");
  busy.hidden = false;
  try {
    const response = await kyso.call("/api/v1/verify?" + query(), {
      method: "POST",
      headers: { "content-type": "application/pdf" },
      body: file,
    });
    if (!response.ok) {
      showError(await kyso.errorText(response));
      return;
    }
    state.report = await response.json();
    draw();
    document.getElementById("verdict").focus?.();
  } catch (e) {
    showError(e.message);
  } finally {
    busy.hidden = true;
  }
}

async function downloadSigned(number) {
  if (!state.file) return;
  const response = await kyso.call(`/api/v1/signatures/${number}/signed-version`, {
    method: "POST",
    headers: { "content-type": "application/pdf" },
    body: state.file,
  });
  if (!response.ok) {
    showError(await kyso.errorText(response));
    return;
  }
  kyso.save(await response.blob(), `${state.file.name.replace(/\.pdf$/i, "")}-signature-${number}.pdf`);
}

document.addEventListener("DOMContentLoaded", () => {
  kyso.applyWords();
  const input = document.getElementById("file");
  const drop = document.getElementById("drop");
  input.addEventListener("change", () => input.files[0] && verify(input.files[0]));
  drop.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      input.click();
    }
  });
  drop.addEventListener("dragover", (e) => {
    e.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    const file = e.dataTransfer.files[0];
    if (file) verify(file);
  });
  document.getElementById("lang").addEventListener("click", () => kyso.switchLang(draw));
  document.getElementById("print").addEventListener("click", () => window.print());
});
