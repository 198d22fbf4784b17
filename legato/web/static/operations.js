// Operations: heartbeat ages in words, and redelivering a failed webhook delivery.
import { api, duration } from "./common.js";

for (const node of document.querySelectorAll("time.age")) {
  const iso = node.getAttribute("datetime");
  node.title = `${iso} (UTC)`;
  node.textContent = `${duration(Date.now() - Date.parse(iso))} ago`;
}

for (const button of document.querySelectorAll("button.redeliver")) {
  button.addEventListener("click", async () => {
    const box = document.getElementById("ops-result");
    try {
      await api(`/api/v1/webhooks/deliveries/${button.dataset.id}/redeliver`, { method: "POST" });
      box.textContent = `Delivery ${button.dataset.id} is queued again.`;
      button.disabled = true;
    } catch (err) {
      box.textContent = err.message;
    }
  });
}
