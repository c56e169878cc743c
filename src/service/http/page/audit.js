// The auditor's page: search the log, read a record, check the log, export what was found.
"use strict";

const found = { records: [], next: "", filters: null };

function filters() {
  const form = new FormData(document.getElementById("search"));
  const q = new URLSearchParams();
  for (const [k, v] of form) {
    const value = String(v).trim();
    if (!value) continue;
    // Dates are days in Vietnam time; the API takes RFC 3339.
    if (k === "from") q.set(k, value + "T00:00:00+07:00");
    else if (k === "to") q.set(k, value + "T23:59:59+07:00");
    else q.set(k, value);
  }
  q.set("page_size", "100");
  return q;
}

function showError(text) {
  const e = document.getElementById("error");
  e.textContent = text || "";
  e.hidden = !text;
}

function row(r) {
  const { el } = kyso;
  const signers = r.signatures.map((s) => s.signer_common_name).filter(Boolean).join("; ");
  return el("tr", { tabindex: "0", "data-id": r.id, onclick: () => detail(r.id),
    onkeydown: (e) => e.key === "Enter" && detail(r.id) },
    el("td", {}, kyso.vnTime(r.time)),
    el("td", {}, r.document_number),
    el("td", {}, signers),
    el("td", { class: "verdict-" + (r.verdict || "none") }, r.verdict || r.error || ""),
    el("td", {}, r.principal),
    el("td", {}, r.id));
}

function draw() {
  document.querySelector("#records tbody").replaceChildren(...found.records.map(row));
  document.getElementById("count").textContent = `${found.records.length} ${kyso.t("records_found")}`;
  document.getElementById("more").hidden = !found.next;
}

async function search(more) {
  showError("");
  const q = more ? found.filters : filters();
  if (more) q.set("page_token", found.next);
  const response = await kyso.call("/api/v1/records?" + q.toString());
  if (!response.ok) {
    showError(await kyso.errorText(response));
    return;
  }
  const page = await response.json();
  found.filters = q;
  found.records = more ? found.records.concat(page.records) : page.records;
  found.next = page.next_page_token;
  draw();
}

async function detail(id) {
  const response = await kyso.call(`/api/v1/records/${encodeURIComponent(id)}`);
  if (!response.ok) {
    showError(await kyso.errorText(response));
    return;
  }
  const section = document.getElementById("detail");
  section.querySelector("pre").textContent = JSON.stringify(await response.json(), null, 2);
  section.hidden = false;
  section.scrollIntoView();
}

async function checkLog() {
  const response = await kyso.call("/api/v1/log/verify", { method: "POST" });
  const state = document.getElementById("log-state");
  if (!response.ok) {
    showError(await kyso.errorText(response));
    return;
  }
  const check = await response.json();
  state.className = check.ok ? "ok" : "error";
  state.textContent = check.ok
    ? `${kyso.t("log_ok")}: ${check.records_checked} ${kyso.t("records_found")}`
    : `${kyso.t("log_bad")}: #${check.first_bad_sequence} — ${check.problem}`;
  state.hidden = false;
}

function csv() {
  const columns = ["id", "time", "document_number", "signers", "organizations", "verdict", "principal", "document_sha256", "error"];
  const cell = (v) => {
    const text = v === null || v === undefined ? "" : String(v);
    return /[",\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
  };
  const lines = [columns.join(",")].concat(found.records.map((r) => [
    r.id, r.time, r.document_number,
    r.signatures.map((s) => s.signer_common_name).filter(Boolean).join("; "),
    r.signatures.map((s) => s.signer_organization).filter(Boolean).join("; "),
    r.verdict, r.principal, r.document_sha256, r.error,
  ].map(cell).join(",")));
  kyso.save(new Blob(["\ufeff" + lines.join("\r\n") + "\r\n"], { type: "text/csv" }), "kyso-audit.csv");
}

document.addEventListener("DOMContentLoaded", () => {
  kyso.applyWords();
  document.getElementById("search").addEventListener("submit", (e) => {
    e.preventDefault();
    search(false);
  });
  document.getElementById("more").addEventListener("click", () => search(true));
  document.getElementById("check").addEventListener("click", checkLog);
  document.getElementById("csv").addEventListener("click", csv);
  document.getElementById("lang").addEventListener("click", () => kyso.switchLang(draw));
});
