// Upload progress (XHR upload events) and the polling of an upload's processing.
// Plain JavaScript, no library; the pages work without it (plain form posts).
(function () {
  "use strict";

  function setBar(bar, text, share, label) {
    bar.style.width = Math.max(0, Math.min(100, share * 100)).toFixed(1) + "%";
    text.textContent = label;
  }

  function enhanceUpload(form) {
    var box = document.getElementById("upload-progress");
    var bar = document.getElementById("upload-bar");
    var text = document.getElementById("upload-text");
    form.addEventListener("submit", function (event) {
      if (!window.XMLHttpRequest || !window.FormData) { return; }
      event.preventDefault();
      var xhr = new XMLHttpRequest();
      box.classList.remove("hidden");
      xhr.upload.addEventListener("progress", function (e) {
        if (e.lengthComputable) {
          setBar(bar, text, e.loaded / e.total,
                 "上传中 " + Math.round(100 * e.loaded / e.total) + "%");
        }
      });
      xhr.addEventListener("load", function () {
        if (xhr.status < 400 && xhr.responseURL && xhr.responseURL.indexOf("/unit/submissions/") >= 0) {
          window.location.assign(xhr.responseURL);
          return;
        }
        document.open();
        document.write(xhr.responseText);
        document.close();
      });
      xhr.addEventListener("error", function () {
        setBar(bar, text, 0, "上传失败：网络错误，请重试。");
      });
      xhr.open("POST", form.action);
      xhr.send(new FormData(form));
      setBar(bar, text, 0, "上传中…");
    });
  }

  function pollSubmission(section) {
    var url = section.getAttribute("data-status-url");
    var bar = document.getElementById("job-bar");
    var text = document.getElementById("job-text");
    function tick() {
      var xhr = new XMLHttpRequest();
      xhr.open("GET", url);
      xhr.addEventListener("load", function () {
        if (xhr.status !== 200) { window.setTimeout(tick, 2000); return; }
        var s = JSON.parse(xhr.responseText);
        if (s.done || s.status !== "running") { window.location.reload(); return; }
        var share = s.total ? s.rows / s.total : 0;
        var label = s.phase + "：已读取 " + s.rows + (s.total ? " / " + s.total : "") +
          " 行，已发送 " + s.published + " 行，拒绝 " + (s.rejected || 0) + " 行";
        if (s.decided) { label += "，已有结果 " + s.decided + " 行"; }
        if (bar && text) { setBar(bar, text, share, label); }
        window.setTimeout(tick, 700);
      });
      xhr.addEventListener("error", function () { window.setTimeout(tick, 2000); });
      xhr.send();
    }
    tick();
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("upload-form");
    if (form) { enhanceUpload(form); }
    var section = document.getElementById("submission");
    if (section && section.getAttribute("data-status") === "running") { pollSubmission(section); }
  });
}());
