// modstream review: the queue as cards. Images arrive blurred; space (or a click) reveals the
// current one; n, s and k record "nsfw", "safe" and "skip" for it. Every API call carries the
// reviewer's token, which lives in this tab's sessionStorage only.
"use strict";

const api = {
  token: sessionStorage.getItem("modstream-review-token"),
  async call(path, options = {}) {
    const headers = { Authorization: `Bearer ${api.token}`, ...(options.headers || {}) };
    const response = await fetch(path, { ...options, headers });
    if (response.status === 401) {
      signOut("That token is not a reviewer's.");
      throw new Error("unauthorized");
    }
    return response;
  },
};

const cards = () => [...document.querySelectorAll("#cards .card")];
const current = () => document.querySelector("#cards .card.current");
let refilling = false;

function signOut(message) {
  sessionStorage.removeItem("modstream-review-token");
  api.token = null;
  document.body.dataset.state = "signed-out";
  notice(message || "");
}

function notice(text) {
  document.getElementById("notice").textContent = text;
}

function showCounters(stats) {
  document.getElementById("counters").textContent =
    `${stats.pending} left · ${stats.decided_today} decided today ` +
    `(${stats.decided_today_by_you} by you)`;
}

function sourceLink(item) {
  const meta = item.meta || {};
  if (typeof meta.post === "string" && meta.post.startsWith("at://")) {
    const [did, , rkey] = meta.post.slice(5).split("/");
    return `https://bsky.app/profile/${did}/post/${rkey}`;
  }
  return meta.status_url || meta.link || null;
}

// What a card says about where an upload came from: the object (S3/MinIO through the webhook)
// and who uploaded it (an "uploader", "user" or "owner" field, or such S3 user metadata).
function originOf(item) {
  const meta = item.meta || {};
  const facts = [];
  if (typeof meta.key === "string") {
    facts.push(`object ${typeof meta.bucket === "string" ? `${meta.bucket}/` : ""}${meta.key}`);
  }
  const uploader = uploaderOf(meta);
  if (uploader) facts.push(`uploaded by ${uploader}`);
  return facts;
}

function uploaderOf(meta) {
  for (const key of ["uploader", "user", "owner"]) {
    if (typeof meta[key] === "string" && meta[key]) return meta[key];
  }
  const user = meta.user_metadata;
  if (user && typeof user === "object") {
    for (const [key, value] of Object.entries(user)) {
      if (/uploader|user|owner/i.test(key) && typeof value === "string" && value) return value;
    }
  }
  return null;
}

function labelsOf(item) {
  const meta = item.meta || {};
  const labels = Array.isArray(meta.self_labels) ? [...meta.self_labels] : [];
  if (meta.sensitive === true) labels.push("sensitive");
  if (meta.spoiler_text) labels.push(`CW: ${meta.spoiler_text}`);
  return labels;
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function card(item) {
  const root = element("article", "card");
  root.dataset.id = item.id;
  const frame = element("div", "frame");
  const image = element("img", "blurred");
  image.alt = "image to review (blurred until revealed)";
  frame.append(image, element("span", "veil", "space or click to reveal"));
  frame.addEventListener("click", () => reveal(root));
  api.call(`/api/v1/image/${encodeURIComponent(item.id)}`).then(async (response) => {
    if (!response.ok) {
      frame.replaceChildren(element("span", "veil", "the image could not be fetched"));
      return;
    }
    image.src = URL.createObjectURL(await response.blob());
  }).catch(() => {});

  const facts = element("div", "facts");
  facts.append(element("div", "score", `nsfw ${Number(item.nsfw).toFixed(3)}`));
  facts.append(element("div", "muted",
    `${item.decision} under ${item.policy} · ${item.source || "unknown source"}` +
    (item.topic && item.topic !== "images.review" ? ` · from ${item.topic}` : "")));
  for (const fact of originOf(item)) facts.append(element("div", "muted origin", fact));
  const labels = labelsOf(item);
  if (labels.length) {
    const row = element("div", "labels");
    for (const label of labels) row.append(element("span", "", label));
    facts.append(row);
  }
  const link = sourceLink(item);
  if (link) {
    const anchor = element("a", "muted", "open the post");
    anchor.href = link;
    anchor.rel = "noopener noreferrer";
    anchor.target = "_blank";
    facts.append(anchor);
  }
  const actions = element("div", "actions");
  for (const [label, text] of [["nsfw", "Not safe (n)"], ["safe", "Safe (s)"], ["skip", "Skip (k)"]]) {
    const button = element("button", label, text);
    button.type = "button";
    button.addEventListener("click", () => decide(root, label));
    actions.append(button);
  }
  root.append(frame, facts, actions);
  return root;
}

function reveal(root) {
  const image = root.querySelector("img");
  if (image) image.classList.toggle("blurred");
}

function markCurrent() {
  const all = cards();
  all.forEach((node, index) => node.classList.toggle("current", index === 0));
  document.body.dataset.empty = String(all.length === 0);
}

async function refill() {
  if (refilling || !api.token) return;
  refilling = true;
  try {
    const response = await api.call("/api/v1/queue?limit=6");
    const body = await response.json();
    const shown = new Set(cards().map((node) => node.dataset.id));
    for (const item of body.items) {
      if (!shown.has(item.id)) document.getElementById("cards").append(card(item));
    }
    showCounters(body.stats);
    markCurrent();
  } finally {
    refilling = false;
  }
}

async function decide(root, label) {
  const id = root.dataset.id;
  const response = await api.call("/api/v1/decisions", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ id, label }),
  });
  if (response.status === 202 || response.status === 404 || response.status === 409) {
    const body = await response.json();
    if (response.status !== 202) notice(body.error.message);
    else notice("");
    // The header counts what is left now, not what was left when the queue was last read.
    if (body.stats) showCounters(body.stats);
    else api.call("/api/v1/stats").then((r) => r.json()).then(showCounters).catch(() => {});
    const image = root.querySelector("img");
    if (image && image.src) URL.revokeObjectURL(image.src);
    root.remove();
    markCurrent();
    if (cards().length < 3) await refill();
    return;
  }
  notice(`the decision was not stored (${response.status}); try again`);
}

document.addEventListener("keydown", (event) => {
  if (document.body.dataset.state !== "reviewing" || event.target instanceof HTMLInputElement) return;
  const root = current();
  if (!root) return;
  if (event.key === " ") {
    event.preventDefault();
    reveal(root);
  } else if (event.key === "n" || event.key === "s" || event.key === "k") {
    decide(root, { n: "nsfw", s: "safe", k: "skip" }[event.key]);
  }
});

document.getElementById("sign-in").addEventListener("submit", (event) => {
  event.preventDefault();
  api.token = document.getElementById("token").value.trim();
  sessionStorage.setItem("modstream-review-token", api.token);
  start();
});

function start() {
  document.body.dataset.state = "reviewing";
  refill().catch(() => {});
}

setInterval(() => { if (api.token && cards().length < 3) refill().catch(() => {}); }, 3000);
if (api.token) start();
