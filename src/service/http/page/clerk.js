// The clerk's page: a PDF in, the conclusion first, then one card per signature.
"use strict";

const state = { file: null, report: null };

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
    el("details", {}, el("summary", {}, t("checks")), checks),
    el("p", { class: "muted" }, pick(s.role_evidence_vi, s.role_evidence)),
    download);
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

function draw() {
  const report = state.report;
  if (!report) return;
  document.getElementById("conclusion").replaceChildren(conclusion(report));
  document.getElementById("signatures").replaceChildren(...report.signatures.map(card));
  document.getElementById("record-id").textContent = report.audit_record_id;
  document.getElementById("slip").replaceChildren(slip(report));
  document.getElementById("result").hidden = false;
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
