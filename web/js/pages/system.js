import { html, useState } from '../lib.js';
import { call, getToken, setToken, describe } from '../api.js';
import { setState, state } from '../state.js';
import { useLoad, PageHeader, Button, ErrorNote, Skeleton, Badge, Alert } from '../ui.js';
import { Icon } from '../icons.js';
import { timeOnly } from '../format.js';
import { capitalise } from '../text.js';

function titleCase(s) {
  return capitalise(String(s || '').replace(/[_-]+/g, ' '));
}

const MODE = {
  monolith: 'Single server — everything runs in this one program with its own database.',
  distributed: 'Distributed — the shop runs as several services that talk to each other.',
};

export function SystemPage() {
  const [checkedAt, setCheckedAt] = useState(null);
  const health = useLoad(async () => {
    try {
      const r = await call('GET', '/health', { quiet: true });
      setCheckedAt(new Date().toISOString());
      setState({ health: r.data });
      return r.data;
    } catch (e) {
      // 503 still carries the health document when a dependency is down.
      setCheckedAt(new Date().toISOString());
      if (e.status === 503 && e.body && Array.isArray(e.body.dependencies)) { setState({ health: e.body }); return e.body; }
      throw e;
    }
  });
  const h = health.data;
  const deps = h?.dependencies || [];
  const hasToken = !!getToken();

  return html`<div class="page narrow">
    <${PageHeader} title="System" sub="Is everything working?">
      <${Button} icon="refresh" busy=${health.loading} onClick=${health.reload}>Check again<//>
    <//>
    <${ErrorNote} error=${health.error} onRetry=${health.reload} />
    ${!h && !health.error && html`<${Skeleton} rows=${3} />`}
    ${h && html`
      <div class=${`card health-summary ${h.ok ? 'ok' : 'bad'}`} data-testid="health-summary">
        <span class="hs-icon"><${Icon} name=${h.ok ? 'check' : 'alert'} size=${30} /></span>
        <div>
          <h2>${h.ok ? 'All systems working' : 'Some parts are not working'}</h2>
          <p class="muted">${MODE[h.mode] || (h.mode ? `Mode: ${titleCase(h.mode)}` : '')}</p>
          ${checkedAt && html`<p class="small muted">Checked at ${timeOnly(checkedAt)}</p>`}
        </div>
      </div>
      <h2 class="section-title">Dependencies</h2>
      <ul class="deps" data-testid="dependencies">
        ${deps.length === 0 && html`<li class="muted">No dependencies reported.</li>`}
        ${deps.map((d) => html`<li class=${`card dep ${d.ok ? 'ok' : 'bad'}`} data-testid="dependency">
          <div class="dep-head">
            <span class="dot"></span>
            <strong>${titleCase(d.name)}</strong>
            <${Badge} tone=${d.ok ? 'ok' : 'danger'}>${d.ok ? 'Working' : 'Down'}<//>
          </div>
          ${d.detail && html`<p class="dep-detail">${d.detail}</p>`}
          ${(d.degrades || []).length > 0 && html`<div class="dep-degrades">
            <span class="small muted">${d.ok ? 'If it fails, these stop working:' : 'Not working while it is down:'}</span>
            <ul class="tags">${d.degrades.map((x) => html`<li class=${d.ok ? '' : 'bad'}>${titleCase(x)}</li>`)}</ul>
          </div>`}
        </li>`)}
      </ul>
    `}
    <h2 class="section-title">This device</h2>
    <div class="card">
      <dl class="facts">
        <div><dt>Server</dt><dd>${location.host}</dd></div>
        <div><dt>Access token</dt><dd>${hasToken ? 'Saved on this device' : 'None (not needed on this network)'}</dd></div>
      </dl>
      ${hasToken && html`<div class="card-actions"><${Button} kind="danger-ghost" icon="lock"
        onClick=${() => { setToken(''); setState({ auth: { needed: true, had: false } }); }}>Forget access token<//></div>`}
    </div>
  </div>`;
}
