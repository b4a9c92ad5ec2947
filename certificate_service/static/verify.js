// TraceChain verification pages: show the chosen file's name and refuse files over the limit before upload.
(function () {
  "use strict";
  var form = document.querySelector("form.upload");
  if (!form) { return; }
  var input = form.querySelector("input[type=file]");
  var nameBox = form.querySelector("[data-file-name]");
  var errorBox = form.querySelector("[data-file-error]");
  var limit = parseInt(form.getAttribute("data-max-bytes") || "0", 10);

  function showError(text) {
    errorBox.textContent = text;
    errorBox.hidden = !text;
  }

  function tooLarge() {
    var file = input.files && input.files[0];
    return Boolean(file && limit && file.size > limit);
  }

  input.addEventListener("change", function () {
    var file = input.files && input.files[0];
    nameBox.textContent = file ? file.name : "未选择文件";
    showError(tooLarge() ? "文件超过 " + Math.floor(limit / 1048576) + " MB，无法上传。证书 PDF 通常只有几十 KB。" : "");
  });

  form.addEventListener("submit", function (event) {
    if (tooLarge()) {
      event.preventDefault();
      showError("文件超过 " + Math.floor(limit / 1048576) + " MB，无法上传。证书 PDF 通常只有几十 KB。");
    }
  });
})();
