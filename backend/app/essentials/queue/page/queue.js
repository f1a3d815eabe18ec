// The queue's admin page: signs in through the API, then reads and acts through
// /api/v1/queue. The access token lives in this script's memory only. Every value
// from the server is written with textContent, never parsed as HTML.
"use strict";

const API = new URL("../api/v1/", document.baseURI);
const REFRESH_SECONDS = 5;
let token = null;
let timer = null;
let failedCursor = null;

const $ = (selector) => document.querySelector(selector);

class SignedOut extends Error {}

async function api(path, options = {}) {
  const response = await fetch(new URL(path, API), {
    ...options,
    headers: { ...(options.headers || {}), Authorization: `Bearer ${token}` },
  });
  if (response.status === 401) {
    signOut("Your session has ended: sign in again.");
    throw new SignedOut();
  }
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    throw new Error(body.detail || `${response.status} ${response.statusText}`);
  }
  return response.status === 204 ? null : response.json();
}

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text === null || text === undefined ? "" : String(text);
  if (className) td.className = className;
  return td;
}

function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "";
}

function fill(table, items, columns, render) {
  const body = table.tBodies[0];
  body.replaceChildren();
  if (items.length === 0) {
    cell(body.insertRow(), "none", "empty").colSpan = columns;
    return;
  }
  for (const item of items) render(body.insertRow(), item);
}

function renderStatus(status) {
  fill($("#queues"), status.queues, 5, (row, q) => {
    cell(row, q.queue);
    for (const count of [q.ready, q.delayed, q.running, q.failed]) cell(row, count, "number");
  });
  fill($("#workers"), status.workers, 7, (row, w) => {
    for (const value of [w.id, w.hostname, w.pid, w.queues, w.concurrency]) cell(row, value);
    cell(row, when(w.started_at));
    cell(row, when(w.heartbeat_at));
  });
}

function renderRunning(jobs) {
  fill($("#running"), jobs, 5, (row, job) => {
    cell(row, job.name).title = job.uuid;
    cell(row, job.queue);
    cell(row, `${job.attempts} of ${job.max_attempts}`);
    cell(row, job.worker_id);
    cell(row, when(job.reserved_at));
  });
}

function renderFailed(jobs, append) {
  const table = $("#failed");
  if (append) {
    for (const job of jobs) failedRow(table.tBodies[0].insertRow(), job);
  } else {
    fill(table, jobs, 6, failedRow);
  }
}

function failedRow(row, job) {
  row.dataset.failedId = job.id;
  cell(row, when(job.failed_at));
  const name = cell(row, job.name);
  name.title = job.uuid;
  const payload = document.createElement("div");
  const code = document.createElement("code");
  code.textContent = job.payload;
  payload.append(code);
  name.append(payload);
  cell(row, job.queue);
  cell(row, `${job.attempts} of ${job.max_attempts}`);
  const error = cell(row, job.exception.trim().split("\n").pop());
  error.className = "error";
  const details = document.createElement("details");
  const summary = document.createElement("summary");
  summary.textContent = "traceback";
  const pre = document.createElement("pre");
  pre.textContent = job.exception;
  details.append(summary, pre);
  error.append(details);
  const action = row.insertCell();
  const retry = document.createElement("button");
  retry.type = "button";
  retry.textContent = "Retry";
  retry.addEventListener("click", () => act(`queue/failed/${job.id}/retry`, retry));
  action.append(retry);
}

async function act(path, button) {
  button.disabled = true;
  try {
    const result = await api(path, { method: "POST" });
    notice(`Retried ${result.retried} job${result.retried === 1 ? "" : "s"}.`);
    await refresh();
  } catch (error) {
    if (!(error instanceof SignedOut)) notice(`Could not retry: ${error.message}`);
  } finally {
    button.disabled = false;
  }
}

function notice(text) {
  $("#notice").textContent = text;
}

async function refresh() {
  const [status, running, failed] = await Promise.all([
    api("queue/status"),
    api("queue/running"),
    api("queue/failed?limit=50"),
  ]);
  renderStatus(status);
  renderRunning(running);
  renderFailed(failed.items, false);
  failedCursor = failed.next_cursor;
  $("#older").hidden = !failedCursor;
}

async function older() {
  const page = await api(`queue/failed?limit=50&cursor=${encodeURIComponent(failedCursor)}`);
  renderFailed(page.items, true);
  failedCursor = page.next_cursor;
  $("#older").hidden = !failedCursor;
}

async function refreshQuietly() {
  try {
    await refresh();
  } catch (error) {
    if (!(error instanceof SignedOut)) notice(`Could not refresh: ${error.message}`);
  }
}

async function signIn(event) {
  event.preventDefault();
  const form = event.target;
  const problem = $("#sign-in-error");
  problem.textContent = "";
  const response = await fetch(new URL("auth/login", API), {
    method: "POST",
    body: new URLSearchParams(new FormData(form)),
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    problem.textContent = body.detail || `Sign-in failed (${response.status})`;
    return;
  }
  token = body.access_token;
  const email = new FormData(form).get("username");
  try {
    await refresh();
  } catch (error) {
    token = null;
    if (!(error instanceof SignedOut)) problem.textContent = error.message;
    return;
  }
  form.reset();
  form.hidden = true;
  $("#dashboard").hidden = false;
  $("#sign-out").hidden = false;
  $("#signed-in-as").textContent = email;
  timer = setInterval(refreshQuietly, REFRESH_SECONDS * 1000);
}

function signOut(message) {
  token = null;
  clearInterval(timer);
  $("#dashboard").hidden = true;
  $("#sign-out").hidden = true;
  $("#signed-in-as").textContent = "";
  $("#sign-in").hidden = false;
  $("#sign-in-error").textContent = message || "";
}

$("#sign-in").addEventListener("submit", signIn);
$("#sign-out").addEventListener("click", () => signOut());
$("#retry-all").addEventListener("click", (event) => act("queue/failed/retry-all", event.target));
$("#older").addEventListener("click", () => older().catch((error) => notice(error.message)));
