// The memory page's progressive enhancement. Every action works without it: it only adds
// "select all", a confirmation before destructive buttons, and local times.
'use strict';

document.addEventListener('DOMContentLoaded', () => {
  for (const box of document.querySelectorAll('input[data-select-all]')) {
    const label = box.closest('label');
    if (label) label.hidden = false;
    const form = box.form;
    const name = box.dataset.selectAll;
    box.addEventListener('change', () => {
      for (const item of form.querySelectorAll(`input[type=checkbox][name="${name}"]`)) {
        item.checked = box.checked;
      }
    });
  }

  document.addEventListener('click', (event) => {
    const button = event.target.closest('button[data-confirm]');
    if (button && !window.confirm(button.dataset.confirm)) event.preventDefault();
  });

  const format = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
  for (const time of document.querySelectorAll('time[datetime]')) {
    if (!time.textContent.endsWith('UTC')) continue;
    const date = new Date(time.getAttribute('datetime'));
    if (!Number.isNaN(date.getTime())) {
      time.title = time.textContent;
      time.textContent = format.format(date);
    }
  }
});
