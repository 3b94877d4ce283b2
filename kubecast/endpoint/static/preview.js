// The preview player. window.kubecastPlayer is the test hook: the video element, the engine
// in use and every error the engine reported.
(function () {
  const video = document.getElementById("video");
  const params = new URLSearchParams(location.search);
  const format = params.get("format");
  const engine = format === "dash" ? "dash" : "hls";
  const fmp4Url = document.getElementById("hls-url").getAttribute("href");
  // hls-ts: the same channel as HLS with MPEG-TS segments, remuxed by the endpoint.
  const hlsUrl = format === "hls-ts" ? fmp4Url.replace(/\/index\.m3u8$/, "/ts/index.m3u8") : fmp4Url;
  const dashUrl = document.getElementById("dash-url").getAttribute("href");
  const state = { video: video, engine: engine, errors: [], levels: [] };
  window.kubecastPlayer = state;
  document.getElementById("engine-" + (format === "hls-ts" ? "hls-ts" : engine)).classList.add("active");

  function fail(message) {
    state.errors.push(String(message));
    console.error("kubecast player:", message);
  }

  if (engine === "dash") {
    const player = dashjs.MediaPlayer().create();
    player.updateSettings({ streaming: { delay: { liveDelayFragmentCount: 3 } } });
    player.on(dashjs.MediaPlayer.events.ERROR, function (event) {
      fail("dash.js: " + JSON.stringify(event.error || event));
    });
    player.initialize(video, dashUrl, true);
    state.player = player;
  } else if (window.Hls && Hls.isSupported()) {
    const hls = new Hls({ liveSyncDurationCount: 3 });
    hls.on(Hls.Events.ERROR, function (_event, data) {
      if (!data.fatal) return;
      fail("hls.js: " + data.type + " " + data.details);
      // A preview opened before the first segment finds no rendition yet: try again, as a
      // viewer waiting for a show to start would.
      if (data.type === Hls.ErrorTypes.NETWORK_ERROR) {
        setTimeout(function () { hls.loadSource(hlsUrl); }, 2000);
      } else if (data.type === Hls.ErrorTypes.MEDIA_ERROR) {
        hls.recoverMediaError();
      }
    });
    hls.on(Hls.Events.LEVEL_SWITCHED, function (_event, data) {
      state.levels.push(data.level);
    });
    hls.loadSource(hlsUrl);
    hls.attachMedia(video);
    state.player = hls;
  } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
    video.src = hlsUrl; // Safari plays HLS natively
  } else {
    fail("this browser supports neither MSE nor native HLS");
  }
  video.addEventListener("error", function () {
    fail("video element: " + (video.error && video.error.message));
  });

  function cell(row, text) {
    const td = document.createElement("td");
    td.textContent = text;
    row.appendChild(td);
  }

  function refresh() {
    // Relative: under a signed URL (/t/<token>/preview/<channel>/) the token comes along.
    fetch("../../status/" + encodeURIComponent(document.body.dataset.channel) + ".json", { cache: "no-store" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (status) {
        if (!status) return;
        const badge = document.getElementById("state");
        badge.textContent = status.state;
        badge.className = "state " + status.state;
        const renditions = document.querySelector("#renditions tbody");
        renditions.innerHTML = "";
        status.tracks.forEach(function (track) {
          const row = document.createElement("tr");
          cell(row, track.id);
          cell(row, track.kind === "video" ? track.width + "×" + track.height : track.sampleRate + " Hz");
          cell(row, Math.round(track.bandwidth / 1000) + " kbit/s");
          cell(row, track.codecs);
          renditions.appendChild(row);
        });
        const encoders = document.querySelector("#encoders tbody");
        encoders.innerHTML = "";
        Object.keys(status.encoders).forEach(function (name) {
          const health = status.encoders[name];
          const row = document.createElement("tr");
          cell(row, name);
          cell(row, health.state);
          cell(row, "segment " + (health.lastSegment === null ? "–" : health.lastSegment));
          cell(row, Math.round(health.ingestBitrate / 1000) + " kbit/s in");
          encoders.appendChild(row);
        });
      })
      .catch(function () { /* the next poll tries again */ });
  }
  refresh();
  setInterval(refresh, 2000);
  setInterval(function () {
    document.getElementById("thumbnail").src = "thumbnail.jpg?t=" + Date.now();
  }, 4000);
})();
