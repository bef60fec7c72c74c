// Triggerline console: the one script. Pages work without it; it adds copy buttons and the CEL
// editor's compile-as-you-type. No inline handlers anywhere (the CSP forbids them): behaviour
// attaches here, to elements marked with data- attributes.
"use strict";

(function () {
  function csrfToken() {
    var field = document.querySelector('input[name="csrf"]');
    return field ? field.value : "";
  }

  // <button data-copy="ELEMENT_ID">: copies that element's text (or value) to the clipboard.
  function setUpCopy(button) {
    button.addEventListener("click", function () {
      var source = document.getElementById(button.getAttribute("data-copy"));
      if (!source || !navigator.clipboard) {
        return;
      }
      var text = source.value !== undefined ? source.value : source.textContent;
      navigator.clipboard.writeText(text.trim()).then(
        function () { announce(button, "Copied"); },
        function () { announce(button, "Copy failed; select the text instead"); }
      );
    });
  }

  function announce(button, message) {
    var status = document.getElementById(button.getAttribute("data-copy") + "-status");
    if (status) {
      status.textContent = message;
    }
  }

  // <textarea data-cel="filter|transform" data-cel-status="ID">: compiled on the server as the
  // registry compiles it, 300 ms after typing stops; errors show with line and column.
  function setUpCel(area) {
    var status = document.getElementById(area.getAttribute("data-cel-status"));
    var timer = null;
    var sent = 0;
    function check() {
      var expression = area.value;
      var mine = ++sent;
      if (expression.trim() === "") {
        show(status, "", "");
        return;
      }
      fetch("/console/cel-check", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
        body: JSON.stringify({ expression: expression, kind: area.getAttribute("data-cel") })
      }).then(function (response) {
        return response.json().then(function (body) { return { status: response.status, body: body }; });
      }).then(function (answer) {
        if (mine !== sent) {
          return; // a later check is on its way; its answer is the one to show
        }
        var body = answer.body;
        if (answer.status === 200 && body.ok) {
          show(status, "Compiles.", "ok");
        } else if (answer.status === 200) {
          show(status, "Line " + body.line + ", column " + body.column + ": " + body.message, "error");
        } else {
          show(status, body.error || "Could not check the expression.", "error");
        }
      }).catch(function () {
        show(status, "Could not reach the console to check the expression.", "error");
      });
    }
    area.addEventListener("input", function () {
      if (timer) {
        clearTimeout(timer);
      }
      timer = setTimeout(check, 300);
    });
  }

  function show(status, text, kind) {
    if (!status) {
      return;
    }
    status.textContent = text;
    status.className = "cel-status" + (kind ? " " + kind : "");
  }

  // <form data-confirm="QUESTION">: asks before submitting (remove, redrive all, ...).
  function setUpConfirm(form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.getAttribute("data-confirm"))) {
        event.preventDefault();
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-copy]").forEach(setUpCopy);
    document.querySelectorAll("textarea[data-cel]").forEach(setUpCel);
    document.querySelectorAll("form[data-confirm]").forEach(setUpConfirm);
  });
})();
