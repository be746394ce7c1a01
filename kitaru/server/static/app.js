// Kitaru web UI: builds each pending wait's form from its stored schema, checks the
// answer before sending it, and posts it to the same API endpoint the CLI uses. On the
// page of a running execution, follows its live feed (Server-Sent Events) and refreshes
// the timeline as calls end.
"use strict";

(function () {
  const csrf = () => document.querySelector('meta[name="kitaru-csrf"]').content;

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => {
      if (v === true) node.setAttribute(k, "");
      else if (v !== false && v !== undefined && v !== null) node.setAttribute(k, v);
    });
    (children || []).forEach((c) => node.append(c));
    return node;
  }

  // One input for one JSON schema type; returns {node, read}, where read() gives
  // {ok, value} or {ok: false, error}.
  function inputFor(name, type, prop, required) {
    const id = "f-" + Math.random().toString(36).slice(2);
    const title = (prop && prop.title) || name;
    if (type === "boolean" || type === "bool") {
      const yes = el("input", { type: "radio", name: id, value: "true", id: id + "-y" });
      const no = el("input", { type: "radio", name: id, value: "false", id: id + "-n" });
      const node = el("div", { class: "choice", "data-field": name }, [
        el("span", {}, [title]),
        el("label", { for: id + "-y" }, [yes, "Yes"]),
        el("label", { for: id + "-n" }, [no, "No"]),
      ]);
      return { node, read: () => {
        if (yes.checked) return { ok: true, value: true };
        if (no.checked) return { ok: true, value: false };
        return required ? { ok: false, error: title + ": choose yes or no" } : { ok: true, skip: true };
      } };
    }
    if (prop && Array.isArray(prop.enum)) {
      const select = el("select", { id, name }, [el("option", { value: "" }, ["–"])].concat(
        prop.enum.map((v) => el("option", { value: JSON.stringify(v) }, [String(v)]))));
      return { node: el("label", { for: id, "data-field": name }, [title, select]), read: () => {
        if (!select.value) return required ? { ok: false, error: title + ": choose a value" } : { ok: true, skip: true };
        return { ok: true, value: JSON.parse(select.value) };
      } };
    }
    if (type === "integer" || type === "int" || type === "number" || type === "float") {
      const integer = type === "integer" || type === "int";
      const input = el("input", { id, name, type: "text", inputmode: integer ? "numeric" : "decimal" });
      return { node: el("label", { for: id, "data-field": name }, [title, input]), read: () => {
        const raw = input.value.trim();
        if (!raw) return required ? { ok: false, error: title + ": enter a number" } : { ok: true, skip: true };
        const value = Number(raw);
        if (!Number.isFinite(value)) return { ok: false, error: title + ": " + JSON.stringify(raw) + " is not a number" };
        if (integer && !Number.isInteger(value)) return { ok: false, error: title + ": enter a whole number" };
        return { ok: true, value };
      } };
    }
    if (type === "string" || type === "str") {
      const input = prop ? el("input", { id, name, type: "text" }) : el("textarea", { id, name });
      return { node: el("label", { for: id, "data-field": name }, [title, input]), read: () => {
        if (!input.value && required && prop) return { ok: false, error: title + ": required" };
        if (!input.value && !prop) return { ok: true, value: "" };
        return { ok: true, value: input.value };
      } };
    }
    // Objects, arrays and anything else: JSON text.
    const area = el("textarea", { id, name, placeholder: type === "list" || type === "array" ? "[…]" : type === "dict" || type === "object" ? "{…}" : "JSON" });
    return { node: el("label", { for: id, "data-field": name }, [title + " (JSON)", area]), read: () => {
      const raw = area.value.trim();
      if (!raw) return required ? { ok: false, error: title + ": enter JSON" } : { ok: true, skip: true };
      let value;
      try { value = JSON.parse(raw); } catch (e) { return { ok: false, error: title + ": not valid JSON (" + e.message + ")" }; }
      if ((type === "dict" || type === "object") && (value === null || typeof value !== "object" || Array.isArray(value)))
        return { ok: false, error: title + ": expected a JSON object" };
      if ((type === "list" || type === "array") && !Array.isArray(value))
        return { ok: false, error: title + ": expected a JSON array" };
      return { ok: true, value };
    } };
  }

  function propType(prop) {
    if (!prop) return "any";
    if (prop.type) return Array.isArray(prop.type) ? prop.type.find((t) => t !== "null") : prop.type;
    const options = prop.anyOf || prop.oneOf;
    if (options) { const t = options.map(propType).find((x) => x && x !== "null"); return t || "any"; }
    return "any";
  }

  function build(form) {
    form.dataset.built = "1";
    const schema = JSON.parse(form.dataset.schema);
    const fields = form.querySelector(".fields");
    let read;
    if (schema.type === "model") {
      const js = schema.json_schema || {};
      const required = new Set(js.required || []);
      const parts = Object.entries(js.properties || {}).map(([name, prop]) => {
        const f = inputFor(name, propType(prop), prop, required.has(name));
        fields.append(f.node);
        return [name, f];
      });
      read = () => {
        const value = {}; const errors = [];
        parts.forEach(([name, f]) => { const r = f.read(); if (!r.ok) errors.push(r.error); else if (!r.skip) value[name] = r.value; });
        return errors.length ? { ok: false, error: errors.join("; ") } : { ok: true, value };
      };
    } else {
      const f = inputFor("answer", schema.type, null, true);
      fields.append(f.node);
      read = f.read;
    }
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const message = form.querySelector(".message");
      const answer = read();
      if (!answer.ok) { message.textContent = answer.error; message.className = "message bad"; return; }
      message.textContent = "Sending…"; message.className = "message";
      const url = "/api/v1/executions/" + encodeURIComponent(form.dataset.exec) + "/input";
      let response;
      try {
        response = await fetch(url, {
          method: "POST", credentials: "same-origin",
          headers: { "Content-Type": "application/json", "X-Kitaru-CSRF": csrf() },
          body: JSON.stringify({ wait: form.dataset.wait, value: answer.value }),
        });
      } catch (e) { message.textContent = "The server did not answer: " + e.message; message.className = "message bad"; return; }
      if (response.ok) {
        message.textContent = "Answered; the execution is resuming."; message.className = "message good";
        form.querySelector("button").disabled = true;
        setTimeout(() => window.location.reload(), 1500);
        return;
      }
      let detail = response.statusText;
      try { detail = (await response.json()).detail || detail; } catch (e) { /* not JSON */ }
      message.textContent = detail; message.className = "message bad";
    });
  }

  const KINDS = ["run_started", "run_ended", "call_started", "call_ended", "calls_ended", "event", "output", "wait"];
  const FEED_MAX = 500; // entries kept on the page; older ones are dropped from the top

  function ended(key, d) {
    return key + " " + d.status + (d.duration_s !== undefined ? " in " + d.duration_s.toFixed(3) + "s" : "") + (d.error ? ": " + d.error : "");
  }

  function describe(e) {
    const d = e.data || {};
    switch (e.kind) {
      case "run_started": return "run " + e.run + " started";
      case "run_ended": return "run " + e.run + " ended " + (d.status || e.name) + (d.error ? ": " + d.error : "");
      case "call_started": return e.checkpoint + " started";
      case "call_ended": return ended(e.checkpoint, d);
      case "calls_ended": return (d.calls || []).map((c) => ended(c.key, c)).join("; ");
      case "wait": return "waits at " + e.name + (d.question ? ": " + d.question : "");
      case "output": return (e.checkpoint || "flow") + " | " + (d.text || "").replace(/\n$/, "");
      default: return "event " + e.name + (e.checkpoint ? " in " + e.checkpoint : "") + " " + JSON.stringify(e.data) + (e.reused ? " (reused)" : "");
    }
  }

  // Replace parts of the page with the server's new render of it: the status and the
  // timeline as calls end; also the facts, the ready note and the wait forms once the
  // execution ended or waits (forms are replaced only then: nobody is typing in them).
  const AS_CALLS_END = ["#status", "#timeline"];
  const AT_THE_END = AS_CALLS_END.concat(["dl.facts", "#traceback", "#ready", "#pending-waits"]);
  let pending = null;
  function refresh(selectors, delay) {
    clearTimeout(pending);
    pending = setTimeout(async () => {
      const response = await fetch(window.location.href, { credentials: "same-origin" });
      if (!response.ok) return;
      const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
      selectors.forEach((selector) => {
        const now = fresh.querySelector(selector); const here = document.querySelector(selector);
        if (now && here) here.replaceWith(now);
        else if (here) here.remove();
        else if (now) document.getElementById("live").after(now);
      });
      document.querySelectorAll("form.waitform:not([data-built])").forEach(build);
    }, delay);
  }

  function follow(section) {
    const feed = section.querySelector("#feed");
    const source = new EventSource(section.dataset.stream);
    KINDS.forEach((kind) => source.addEventListener(kind, (message) => {
      const entry = JSON.parse(message.data);
      const when = new Date(entry.ts * 1000).toLocaleTimeString();
      feed.append(el("li", { "data-kind": entry.kind, "data-seq": String(entry.seq) }, [
        el("time", {}, [when]), " ", describe(entry)]));
      while (feed.children.length > FEED_MAX) feed.firstElementChild.remove();
      if (kind === "call_ended" || kind === "calls_ended" || kind === "wait") refresh(AS_CALLS_END, 200);
    }));
    source.addEventListener("end", (message) => {
      source.close();
      const end = JSON.parse(message.data);
      feed.append(el("li", { "data-kind": "end" }, ["execution " + end.status]));
      refresh(AT_THE_END, 0);
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("form.waitform").forEach(build);
    const live = document.getElementById("live");
    if (live) follow(live);
  });
})();
