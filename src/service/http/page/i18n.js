// The words of kyso's pages in Vietnamese (the default) and English, the language switch,
// and the one way the pages call the API (with the access token, asked for once).
"use strict";

const WORDS = {
  vi: {
    title: "Kiểm tra chữ ký số văn bản",
    auditor_link: "Tra cứu nhật ký",
    clerk_link: "Kiểm tra văn bản",
    drop: "Chọn hoặc kéo thả tệp PDF vào đây",
    drop_hint: "Tệp được kiểm tra trên máy chủ kyso của cơ quan, không gửi ra ngoài.",
    number: "Số, ký hiệu văn bản (không bắt buộc)",
    expect: "Loại văn bản",
    expect_issued: "Văn bản chính",
    expect_attachment: "Tài liệu kèm theo",
    expect_copy: "Bản sao điện tử",
    expect_any: "Không xét thể thức",
    busy: "Đang kiểm tra…",
    print: "In phiếu kiểm tra",
    record: "Bản ghi nhật ký kiểm tra",
    token_title: "Mã truy cập",
    token_text: "Máy chủ kyso yêu cầu mã truy cập (do quản trị viên cấp).",
    cancel: "Hủy",
    ok: "Tiếp tục",
    verdict_VALID: "Các chữ ký số hợp lệ",
    verdict_INVALID: "Có chữ ký số không hợp lệ",
    verdict_INDETERMINATE: "Chưa đủ căn cứ kết luận về chữ ký số",
    verdict_UNSIGNED: "Văn bản không có chữ ký số",
    issued_yes: "Văn bản được ký số đúng thể thức của văn bản điện tử (Nghị định 30/2020/NĐ-CP).",
    issued_no: "Văn bản chưa đúng thể thức ký số của văn bản điện tử:",
    revocation_unchecked: "Chưa kiểm tra được tình trạng thu hồi của chứng thư số; kết luận chỉ dựa trên dữ liệu hiện có.",
    signature: "Chữ ký",
    role_personal: "Chữ ký của người có thẩm quyền",
    role_organisation: "Chữ ký số của cơ quan, tổ chức",
    role_unknown: "Chưa xác định được vai trò",
    who: "Người ký",
    body: "Cơ quan, tổ chức",
    when: "Thời điểm ký",
    proven: "được chứng thực bởi dấu thời gian",
    claimed: "do người ký khai, chưa được chứng thực",
    status: "Tình trạng",
    ind_PASSED: "Hợp lệ",
    ind_FAILED: "Không hợp lệ",
    ind_INDETERMINATE: "Chưa xác định được",
    checks: "Các bước kiểm tra",
    changes: "Thay đổi sau khi ký",
    no_changes: "Không có thay đổi nào sau khi ký.",
    outcome_passed: "đạt",
    outcome_failed: "không đạt",
    outcome_warning: "lưu ý",
    outcome_skipped: "chưa kiểm tra",
    outcome_info: "thông tin",
    download: "Tải bản đã ký",
    where: "Vị trí",
    where_title: "Vị trí chữ ký trên văn bản",
    drawing: "Đang dựng trang…",
    compare: "So sánh trang khi ký và hiện nay",
    compare_signed: "Khi ký",
    compare_now: "Hiện nay",
    compare_same: "Trang hiện nay trông giống hệt khi ký.",
    compare_areas: "vùng trông khác so với khi ký (khoanh đỏ)",
    compare_new_page: "Trang này chưa có khi ký.",
    page: "trang",
    invisible: "chữ ký không hiển thị trên trang",
    slip_title: "PHIẾU KIỂM TRA CHỮ KÝ SỐ",
    slip_file: "Tệp",
    slip_checked: "Kiểm tra lúc",
    error_prefix: "Không kiểm tra được",
    unsigned_fields: "Ô chữ ký chưa ký",
    search: "Tìm",
    signer: "Người ký",
    organization: "Cơ quan",
    verdict: "Kết quả",
    any: "Tất cả",
    from: "Từ",
    to: "Đến",
    check_log: "Kiểm tra tính toàn vẹn nhật ký",
    export_csv: "Xuất CSV",
    time: "Thời gian",
    caller: "Bên gọi",
    id: "Mã",
    log_ok: "Nhật ký toàn vẹn",
    log_bad: "Nhật ký bị sửa đổi",
    records_found: "bản ghi",
    audit_title: "Tra cứu nhật ký kiểm tra",
    more: "Xem thêm",
  },
  en: {
    title: "Checking a document's digital signatures",
    auditor_link: "Audit log",
    clerk_link: "Check a document",
    drop: "Choose or drop a PDF here",
    drop_hint: "The file is checked on your organisation's kyso server and goes nowhere else.",
    number: "Document number (optional)",
    expect: "Kind of document",
    expect_issued: "Main document",
    expect_attachment: "Attachment",
    expect_copy: "Electronic copy",
    expect_any: "Any (no form rules)",
    busy: "Checking…",
    print: "Print the verification slip",
    record: "Audit record",
    token_title: "Access token",
    token_text: "This kyso server asks for an access token (your administrator gives it).",
    cancel: "Cancel",
    ok: "Continue",
    verdict_VALID: "The signatures hold",
    verdict_INVALID: "A signature does not hold",
    verdict_INDETERMINATE: "The signatures cannot be confirmed yet",
    verdict_UNSIGNED: "The document carries no digital signature",
    issued_yes: "The document is properly issued as an electronic document (Decree 30/2020).",
    issued_no: "The document is not properly issued as an electronic document:",
    revocation_unchecked: "The certificates' revocation status could not be checked; the conclusion rests on the data at hand.",
    signature: "Signature",
    role_personal: "The competent person's signature",
    role_organisation: "The body's signature (its seal)",
    role_unknown: "Role not determined",
    who: "Signer",
    body: "Body",
    when: "Signed at",
    proven: "proven by a timestamp",
    claimed: "as the signer claims, not proven",
    status: "Status",
    ind_PASSED: "Valid",
    ind_FAILED: "Invalid",
    ind_INDETERMINATE: "Indeterminate",
    checks: "Checks",
    changes: "Changes after signing",
    no_changes: "Nothing changed after signing.",
    outcome_passed: "passed",
    outcome_failed: "failed",
    outcome_warning: "warning",
    outcome_skipped: "not checked",
    outcome_info: "information",
    download: "Download the signed version",
    where: "Where",
    where_title: "Where the signatures are",
    drawing: "Drawing the page…",
    compare: "The page when signed and now",
    compare_signed: "When signed",
    compare_now: "Now",
    compare_same: "The page looks the same as when it was signed.",
    compare_areas: "areas look different from when it was signed (outlined in red)",
    compare_new_page: "This page did not exist when it was signed.",
    page: "page",
    invisible: "the signature is not shown on a page",
    slip_title: "DIGITAL SIGNATURE VERIFICATION SLIP",
    slip_file: "File",
    slip_checked: "Checked at",
    error_prefix: "The document could not be checked",
    unsigned_fields: "Signature fields not signed",
    search: "Search",
    signer: "Signer",
    organization: "Body",
    verdict: "Verdict",
    any: "Any",
    from: "From",
    to: "To",
    check_log: "Check the log's integrity",
    export_csv: "Export CSV",
    time: "Time",
    caller: "Caller",
    id: "Id",
    log_ok: "The log is intact",
    log_bad: "The log was altered",
    records_found: "records",
    audit_title: "The verification log",
    more: "More",
  },
};

const kyso = {
  lang: localStorage.getItem("kyso.lang") === "en" ? "en" : "vi",

  t(key) {
    return WORDS[kyso.lang][key] ?? WORDS.vi[key] ?? key;
  },

  // The report's own text in the page's language (its `vi`/`en` or `detail_vi`/`detail`).
  pick(vi, en) {
    return kyso.lang === "en" ? (en || vi || "") : (vi || en || "");
  },

  applyWords() {
    document.documentElement.lang = kyso.lang;
    for (const el of document.querySelectorAll("[data-t]")) {
      el.textContent = kyso.t(el.dataset.t);
    }
    const button = document.getElementById("lang");
    if (button) {
      button.textContent = kyso.lang === "en" ? "Tiếng Việt" : "English";
      button.setAttribute("aria-label", button.textContent);
    }
  },

  switchLang(redraw) {
    kyso.lang = kyso.lang === "en" ? "vi" : "en";
    localStorage.setItem("kyso.lang", kyso.lang);
    kyso.applyWords();
    if (redraw) redraw();
  },

  // An element with `text`, and children.
  el(tag, attrs = {}, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") e.className = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  },

  // Vietnam time, as the clerk reads it.
  vnTime(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    const text = new Intl.DateTimeFormat(kyso.lang === "en" ? "en-GB" : "vi-VN", {
      timeZone: "Asia/Ho_Chi_Minh",
      year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit",
    }).format(d);
    return text + " (UTC+7)";
  },

  // Calls the API; asks for an access token when the server wants one (401) or the one
  // given lacks the role (403: a clerk's token on the auditor's page), at most twice.
  async call(path, init = {}) {
    let response;
    for (let attempt = 0; attempt < 3; attempt++) {
      const headers = new Headers(init.headers || {});
      const token = sessionStorage.getItem("kyso.token");
      if (token) headers.set("authorization", "Bearer " + token);
      response = await fetch(path, { ...init, headers });
      if (response.status !== 401 && response.status !== 403) return response;
      if (attempt === 2) break;
      const given = await kyso.askToken();
      if (!given) return response;
      sessionStorage.setItem("kyso.token", given);
    }
    return response;
  },

  // The token dialog, made the first time it is needed.
  tokenDialog() {
    const found = document.getElementById("token-dialog");
    if (found) return found;
    const { el, t } = kyso;
    const dialog = el("dialog", { id: "token-dialog", "aria-labelledby": "token-title" },
      el("form", { method: "dialog" },
        el("h2", { id: "token-title", "data-t": "token_title" }, t("token_title")),
        el("p", { "data-t": "token_text" }, t("token_text")),
        el("input", { type: "password", id: "token", autocomplete: "off", required: true,
          "aria-labelledby": "token-title" }),
        el("div", { class: "buttons" },
          el("button", { value: "cancel", formnovalidate: true, "data-t": "cancel" }, t("cancel")),
          el("button", { value: "ok", class: "primary", "data-t": "ok" }, t("ok")))));
    document.body.append(dialog);
    return dialog;
  },

  askToken() {
    const dialog = kyso.tokenDialog();
    const input = document.getElementById("token");
    return new Promise((resolve) => {
      input.value = "";
      dialog.addEventListener("close", () => {
        resolve(dialog.returnValue === "ok" && input.value.trim() ? input.value.trim() : null);
      }, { once: true });
      dialog.showModal();
      input.focus();
    });
  },

  // Saves `blob` as the file `name` (the browser's download).
  save(blob, name) {
    const url = URL.createObjectURL(blob);
    const a = kyso.el("a", { href: url, download: name });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  },

  // The message of an API error answer.
  async errorText(response) {
    try {
      const body = await response.json();
      return body.error?.message || response.statusText;
    } catch {
      return response.statusText || String(response.status);
    }
  },
};
