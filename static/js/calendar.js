// The calendar page: FullCalendar (month, week, day and list views) fed by /calendar/events.json for the visible
// range. Dragging over free time fills the booking form; clicking a booking opens its details and the actions the
// server allows. Times are shown and typed in the browser's time zone.
document.addEventListener("DOMContentLoaded", () => {
  const element = document.getElementById("release-calendar");
  if (!element || !window.FullCalendar) return;
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  document.getElementById("your-time-zone").textContent = zone;
  const tzField = document.querySelector("input[name=tz]");
  if (tzField) tzField.value = zone;
  const colorByTeam = document.getElementById("color-by-team");
  // The agenda below the calendar is rendered in UTC; show it in the browser's time zone too.
  for (const time of document.querySelectorAll("time[data-local-time]")) {
    time.textContent = new Date(time.dateTime).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }
  for (const time of document.querySelectorAll("time[data-local-datetime]")) {
    time.textContent = new Date(time.dateTime).toLocaleString([], {
      weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit",
    });
  }
  for (const label of document.querySelectorAll("[data-zone]")) label.textContent = zone;
  const pad = (n) => String(n).padStart(2, "0");
  const local = (d) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;

  const calendar = new FullCalendar.Calendar(element, {
    initialView: "timeGridWeek",
    initialDate: element.dataset.initialDate || undefined,
    timeZone: "local",
    firstDay: 1,
    nowIndicator: true,
    height: "auto",
    slotMinTime: "06:00:00",
    slotMaxTime: "22:00:00",
    allDaySlot: false,
    headerToolbar: { left: "prev,next today", center: "title", right: "dayGridMonth,timeGridWeek,timeGridDay,listWeek" },
    selectable: element.dataset.canBook === "true",
    selectMirror: true,
    selectOverlap: false,  // neither over a booking nor over a freeze
    events: (info, success, failure) => {
      const params = new URLSearchParams({ start: info.startStr, end: info.endStr });
      if (element.dataset.environment) params.set("environment", element.dataset.environment);
      if (element.dataset.team) params.set("team", element.dataset.team);
      if (colorByTeam.checked) params.set("color", "team");
      fetch(`${element.dataset.events}?${params}`, { credentials: "same-origin" })
        .then((response) => (response.ok ? response.json() : Promise.reject(response.statusText)))
        .then(success, failure);
    },
    select: (info) => {
      document.getElementById("id_starts_at").value = local(info.start);
      document.getElementById("id_ends_at").value = local(info.end);
      if (element.dataset.environment) document.getElementById("id_environment").value = element.dataset.environment;
      const title = document.getElementById("id_title");
      title.scrollIntoView({ behavior: "smooth", block: "center" });
      title.focus();
    },
    eventClick: (info) => {
      const props = info.event.extendedProps;
      if (props.kind !== "booking") return;
      info.jsEvent.preventDefault();
      showBooking(info.event);
    },
  });
  calendar.render();
  colorByTeam.addEventListener("change", () => calendar.refetchEvents());

  const modalElement = document.getElementById("booking-modal");
  const modal = new bootstrap.Modal(modalElement);
  function showBooking(event) {
    const props = event.extendedProps;
    modalElement.querySelector("#booking-modal-title").textContent = event.title;
    const when = `${event.start.toLocaleString()} – ${event.end.toLocaleTimeString()}`;
    const rows = [["When", when], ["Status", props.status], ["Team", props.team], ["Requested by", props.requester]];
    if (props.notes) rows.push(["Notes", props.notes]);
    const details = modalElement.querySelector("#booking-modal-details");
    details.replaceChildren(...rows.flatMap(([term, value]) => {
      const dt = document.createElement("dt");
      const dd = document.createElement("dd");
      dt.textContent = term;
      dd.textContent = value;
      dd.dataset.testid = `booking-${term.toLowerCase().replace(/ /g, "-")}`;
      return [dt, dd];
    }));
    for (const form of modalElement.querySelectorAll("form[data-action]")) {
      const url = props[form.dataset.action];
      form.hidden = !url;
      if (url) form.action = url;
    }
    modal.show();
  }
});
