// Every page: the narrow-window menu, and browse forms that send only the fields the user filled in.
const toggle = document.querySelector(".nav-toggle");
const nav = document.getElementById("mainnav");
if (toggle && nav) {
  toggle.addEventListener("click", () => {
    const open = nav.classList.toggle("open");
    toggle.setAttribute("aria-expanded", String(open));
  });
}
for (const form of document.querySelectorAll("form[method=get]")) {
  form.addEventListener("submit", () => {
    for (const field of form.elements) {
      if (field.name && field.value === "" && !field.disabled) field.disabled = true;
    }
    // A new search starts on the first page.
    setTimeout(() => { for (const field of form.elements) field.disabled = false; }, 0);
  });
}

// A list showing records still under way (running jobs) refreshes its rows from the same URL until none is.
const results = document.querySelector("#results[data-live]");
if (results) {
  const refresh = async () => {
    try {
      const html = await (await fetch(window.location.href, { credentials: "same-origin" })).text();
      const fresh = new DOMParser().parseFromString(html, "text/html").getElementById("results");
      if (!fresh) return;
      results.replaceChildren(...fresh.childNodes);
      if (!fresh.hasAttribute("data-live")) { results.removeAttribute("data-live"); return; }
    } catch (error) {
      return;
    }
    setTimeout(refresh, Number(results.dataset.live));
  };
  setTimeout(refresh, Number(results.dataset.live));
}

// A form with data-confirm (Remove) asks before it is sent.
for (const form of document.querySelectorAll("form[data-confirm]")) {
  form.addEventListener("submit", (event) => {
    if (!window.confirm(form.dataset.confirm)) event.preventDefault();
  });
}
