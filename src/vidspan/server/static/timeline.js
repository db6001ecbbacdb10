// vidspan timeline page: library list, player, event timeline and search.
// Talks to the vidspan HTTP API, or runs standalone on window.VIDSPAN_DATA (written by caption_to_html).
(function () {
  "use strict";
  const data = window.VIDSPAN_DATA || null;
  const $ = (id) => document.getElementById(id);
  const player = $("player");
  const state = { video: null, events: [], duration: 0, pendingSeek: null, lanes: 1,
    points: (data && data.points) || [], pointMode: (data && data.point_mode) || "point" };
  const COLORS = ["#ff4040", "#40a0ff", "#ffc800", "#50dc78", "#dc5aff", "#ff8c28", "#00dcdc", "#ff69b4"];
  const HOLD = 0.5;
  const LANE_PX = 30;

  let token = "";
  try {
    const fromUrl = new URLSearchParams(location.hash.slice(1)).get("token")
      || new URLSearchParams(location.search).get("token");
    token = fromUrl || sessionStorage.getItem("vidspan-token") || "";
    if (fromUrl) sessionStorage.setItem("vidspan-token", fromUrl);
  } catch (e) { /* no storage (file://): fine */ }

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("data-")) node.setAttribute(k, v);
      else node[k] = v;
    }
    for (const c of children || []) node.append(c);
    return node;
  }

  function clock(seconds) {
    const t = Math.max(0, Math.round(seconds * 10) / 10);
    const h = Math.floor(t / 3600), m = Math.floor((t % 3600) / 60), s = (t % 60).toFixed(1).padStart(4, "0");
    return (h ? h + ":" + String(m).padStart(2, "0") : String(m).padStart(2, "0")) + ":" + s;
  }

  function setStatus(text, isError) {
    $("status").textContent = text;
    $("status").classList.toggle("error", !!isError);
  }

  async function api(path) {
    const response = await fetch(path, { headers: token ? { Authorization: "Bearer " + token } : {} });
    if (!response.ok) {
      let detail = response.status + " " + response.statusText;
      try { detail = (await response.json()).detail || detail; } catch (e) { /* not JSON */ }
      if (response.status === 401) detail = "This server needs a token: open this page as /#token=YOUR_TOKEN";
      throw new Error(typeof detail === "string" ? detail : JSON.stringify(detail));
    }
    return response.json();
  }

  function mediaUrl(video) {
    if (data) return video.media_url;
    return "media/" + video.id + (token ? "?token=" + encodeURIComponent(token) : "");
  }

  // ---- library ----
  function renderLibrary(videos) {
    const list = $("library");
    list.replaceChildren();
    if (!videos.length) list.append(el("li", { class: "empty", text: "No videos indexed yet." }));
    for (const v of videos) {
      const meta = clock(v.duration_seconds) + " · " + v.num_events + " events" + (v.model ? " · " + v.model : "");
      const item = el("li", { class: "video-item", "data-video-id": String(v.id), title: v.path }, [
        el("div", { class: "name", text: v.name || v.path.split("/").pop() }),
        el("div", { class: "meta", text: meta }),
      ]);
      item.addEventListener("click", () => loadVideo(v.id, null).catch(fail));
      list.append(item);
    }
  }

  // ---- player and timeline ----
  async function loadVideo(id, seekTo) {
    if (state.video && state.video.id === id) {
      seek(seekTo == null ? player.currentTime : seekTo);
      return;
    }
    const detail = data ? Object.assign({}, data.video, { events: data.events }) : await api("api/videos/" + id);
    state.video = detail;
    state.events = detail.events.slice().sort((a, b) => a.start - b.start || a.end - b.end);
    state.duration = detail.duration_seconds || Math.max(1, ...state.events.map((e) => e.end));
    state.pendingSeek = seekTo;
    for (const item of document.querySelectorAll(".video-item")) {
      item.classList.toggle("selected", item.dataset.videoId === String(id));
    }
    $("title").textContent = detail.name || detail.path.split("/").pop();
    $("title").title = detail.path;
    $("scene").textContent = detail.scene || "";
    player.dataset.videoId = String(id);
    player.src = mediaUrl(detail);
    renderTimeline();
    update();
  }

  function seek(t) {
    if (t == null) return;
    if (player.readyState >= 1) {
      player.currentTime = Math.max(0, Math.min(t, state.duration));
    } else {
      state.pendingSeek = t;
    }
    update();
  }

  function assignLanes(events) {
    const laneEnds = [];
    return events.map((e) => {
      let lane = laneEnds.findIndex((end) => end <= e.start);
      if (lane < 0) { lane = laneEnds.length; laneEnds.push(e.end); } else laneEnds[lane] = e.end;
      return lane;
    });
  }

  function renderTimeline() {
    const track = $("track"), rows = $("events");
    track.replaceChildren();
    rows.replaceChildren();
    const lanes = assignLanes(state.events);
    state.lanes = Math.max(1, ...lanes.map((l) => l + 1));
    track.style.height = state.lanes * LANE_PX + "px";
    state.events.forEach((e, i) => {
      const block = el("div", {
        class: "event-block", "data-event-id": String(e.id ?? i), "data-index": String(i),
        "data-start": String(e.start), "data-end": String(e.end),
        title: clock(e.start) + "–" + clock(e.end) + "  " + e.description, text: e.description,
      });
      block.style.top = lanes[i] * LANE_PX + "px";
      block.addEventListener("click", (ev) => { ev.stopPropagation(); seek(e.start); });
      track.append(block);
      const row = el("li", { class: "event-row", "data-index": String(i), "data-start": String(e.start) }, [
        el("span", { class: "range", text: clock(e.start) + "–" + clock(e.end) }),
        el("span", { class: "text", text: e.description }),
      ]);
      row.addEventListener("click", () => seek(e.start));
      rows.append(row);
    });
    if (!state.events.length) rows.append(el("li", { class: "empty", text: "No events." }));
    layout();
  }

  function layout() {
    const d = state.duration || 1;
    for (const block of document.querySelectorAll(".event-block")) {
      const start = Number(block.dataset.start), end = Number(block.dataset.end);
      block.style.left = (100 * start) / d + "%";
      block.style.width = Math.max(0.4, (100 * (end - start)) / d) + "%";
    }
    const axis = $("axis");
    axis.replaceChildren();
    const steps = [0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600];
    const step = steps.find((s) => d / s <= 10) || 7200;
    for (let t = 0; t <= d + 1e-6; t += step) {
      const tick = el("span", { text: clock(t).replace(/\.0$/, "") });
      tick.style.left = (100 * t) / d + "%";
      axis.append(tick);
    }
  }

  // ---- points over the player (vidspan point | count | track --html) ----
  function pointsAt(t) {
    if (state.pointMode !== "track") return state.points.filter((p) => Math.abs(p.t - t) <= HOLD / 2);
    const byObject = {};
    for (const p of state.points) (byObject[p.object_id] = byObject[p.object_id] || []).push(p);
    const out = [];
    for (const ps of Object.values(byObject)) {
      ps.sort((a, b) => a.t - b.t);
      let hit = null;
      for (let i = 0; i + 1 < ps.length && !hit; i++) {
        const a = ps[i], b = ps[i + 1];
        if (a.t <= t && t <= b.t && b.t - a.t <= 1.5) {  // between two reported times: interpolate
          const w = (t - a.t) / (b.t - a.t || 1);
          hit = { t: t, object_id: a.object_id, label: a.label,
            x_norm: a.x_norm + w * (b.x_norm - a.x_norm), y_norm: a.y_norm + w * (b.y_norm - a.y_norm) };
        }
      }
      if (!hit) hit = ps.find((p) => Math.abs(p.t - t) <= HOLD / 2) || null;
      if (hit) out.push(hit);
    }
    return out;
  }

  function drawOverlay(t) {
    const canvas = $("overlay");
    if (!state.points.length) { canvas.dataset.drawn = "0"; return; }
    const w = player.clientWidth, h = player.clientHeight;
    if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
    const ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, w, h);
    // the picture inside the element (object-fit: contain)
    const vw = player.videoWidth || (state.video && state.video.width) || w;
    const vh = player.videoHeight || (state.video && state.video.height) || h;
    const scale = Math.min(w / vw, h / vh), pw = vw * scale, ph = vh * scale;
    const left = (w - pw) / 2, top = (h - ph) / 2, r = Math.max(4, Math.min(pw, ph) / 40);
    const shown = pointsAt(t);
    for (const p of shown) {
      const x = left + p.x_norm * pw, y = top + p.y_norm * ph;
      ctx.fillStyle = COLORS[(p.object_id - 1) % COLORS.length];
      ctx.strokeStyle = "#fff";
      ctx.lineWidth = 2;
      ctx.beginPath();
      ctx.arc(x, y, r, 0, 2 * Math.PI);
      ctx.fill();
      ctx.stroke();
      ctx.font = "12px sans-serif";
      ctx.fillText("#" + p.object_id + " " + (p.label || ""), x + r + 3, y - r);
    }
    canvas.dataset.drawn = String(shown.length);
  }

  function update() {
    const t = player.currentTime || 0;
    drawOverlay(t);
    $("playhead").style.left = (100 * Math.min(t, state.duration)) / (state.duration || 1) + "%";
    const active = [];
    state.events.forEach((e, i) => {
      const on = (e.start <= t && t < e.end) || (e.start === e.end && Math.abs(t - e.start) < 0.25);
      if (on) active.push(i);
    });
    for (const node of document.querySelectorAll(".event-block, .event-row")) {
      node.classList.toggle("active", active.includes(Number(node.dataset.index)));
    }
    $("timeline").dataset.active = active.join(",");
  }

  player.addEventListener("loadedmetadata", () => {
    if (Number.isFinite(player.duration) && player.duration > 0) {
      state.duration = player.duration;
      layout();
    }
    if (state.pendingSeek != null) {
      const t = state.pendingSeek;
      state.pendingSeek = null;
      seek(t);
    }
  });
  player.addEventListener("timeupdate", update);
  window.addEventListener("resize", update);
  player.addEventListener("seeked", update);
  player.addEventListener("play", function tick() {
    update();
    if (!player.paused) requestAnimationFrame(() => tick());
  });
  player.addEventListener("error", () => setStatus("The video cannot be played in this browser.", true));
  $("timeline").addEventListener("click", (ev) => {
    const box = $("timeline").getBoundingClientRect();
    seek(((ev.clientX - box.left) / box.width) * state.duration);
  });

  // ---- search ----
  function localSearch(q) {
    const words = q.toLowerCase().split(/\s+/).filter(Boolean);
    return data.events
      .map((e, i) => ({ e, i, score: words.filter((w) => e.description.toLowerCase().includes(w)).length }))
      .filter((x) => x.score > 0)
      .sort((a, b) => b.score - a.score || a.e.start - b.e.start)
      .map((x) => ({ video: data.video.path, video_id: data.video.id, event_id: x.e.id ?? x.i,
                     start: x.e.start, end: x.e.end, score: x.score / words.length, caption: x.e.description }));
  }

  async function search(q) {
    setStatus("Searching…");
    const hits = data ? localSearch(q) : (await api("api/search?limit=20&q=" + encodeURIComponent(q))).hits;
    const list = $("hits");
    list.replaceChildren();
    $("hit-count").textContent = "(" + hits.length + ")";
    if (!hits.length) list.append(el("li", { class: "empty", text: "Nothing found." }));
    for (const h of hits) {
      const item = el("li", {
        class: "hit", "data-video-id": String(h.video_id), "data-event-id": String(h.event_id),
        "data-start": String(h.start), "data-end": String(h.end), title: h.video,
      }, [
        el("div", {}, [el("span", { class: "range", text: clock(h.start) + "–" + clock(h.end) }),
                       document.createTextNode("  " + h.caption)]),
        el("div", { class: "meta", text: h.video.split("/").pop() + " · score " + Number(h.score).toFixed(3) }),
      ]);
      item.addEventListener("click", () => {
        for (const other of document.querySelectorAll(".hit")) other.classList.toggle("selected", other === item);
        loadVideo(h.video_id, h.start).catch(fail);
      });
      list.append(item);
    }
    setStatus(hits.length + " hits for “" + q + "”");
  }

  $("search-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const q = $("search").value.trim();
    if (q) search(q).catch(fail);
  });

  function fail(err) { setStatus(String(err.message || err), true); }

  // ---- start ----
  async function start() {
    if (data) {
      renderLibrary([Object.assign({ num_events: data.events.length }, data.video)]);
      await loadVideo(data.video.id, null);
      setStatus(data.events.length + " events");
    } else {
      const [library, status] = await Promise.all([api("api/videos"), api("api/status").catch(() => null)]);
      renderLibrary(library.videos);
      const hash = new URLSearchParams(location.hash.slice(1));
      const wanted = hash.get("video") ? Number(hash.get("video")) : (library.videos[0] || {}).id;
      if (wanted != null) await loadVideo(wanted, hash.get("t") ? Number(hash.get("t")) : null);
      const events = library.videos.reduce((n, v) => n + v.num_events, 0);
      setStatus(library.videos.length + " videos · " + events + " events"
        + (status && status.indexing ? " · indexing…" : ""));
    }
  }
  start().catch(fail).finally(() => { document.body.dataset.ready = "1"; });
})();
