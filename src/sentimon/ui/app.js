// sentimon's page: three views (Analyze, Score, Watch) chosen by the address's #fragment.

import { startAnalyze, useInfo as analyzeInfo } from "./analyze.js";
import { $, call } from "./api.js";
import { startScore, useInfo as scoreInfo } from "./score.js";
import { setActive, startWatch, useInfo as watchInfo } from "./watch.js";

const VIEWS = ["analyze", "score", "watch"];

function route() {
  const wanted = location.hash.slice(1);
  const name = VIEWS.includes(wanted) ? wanted : "analyze";
  for (const view of VIEWS) {
    $(`view-${view}`).hidden = view !== name;
    const link = $(`nav-${view}`);
    if (view === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.title = `${$(`nav-${name}`).textContent} · sentimon`;
  setActive(name === "watch");
}

async function loadInfo() {
  const got = await call("info", { method: "GET" });
  if (!got.ok) {
    $("model").textContent = got.message;
    setTimeout(loadInfo, 5000);
    return;
  }
  const info = got.body;
  $("model").textContent = `${info.model} (${info.model_revision}) · ${info.backend}`;
  analyzeInfo(info);
  scoreInfo(info);
  watchInfo(info);
}

startAnalyze();
startScore();
startWatch();
window.addEventListener("hashchange", route);
route();
loadInfo();
