/**
 * The report document's renderers on their own: every mark carries its number, missing numbers draw
 * nothing (never NaN coordinates), names stay text, and the text renderer prints the same tables.
 */
import { describe, expect, it } from 'vitest';
import { cell, renderHtml, renderText, type ReportDocument } from '../../src/eval/document.js';

const HOSTILE = '</svg><script>alert(1)</script>&"\'';

function doc(): ReportDocument {
  return {
    title: `report ${HOSTILE}`,
    facts: [['model', HOSTILE]],
    sections: [
      {
        id: 's1',
        title: 'numbers',
        notes: [`note ${HOSTILE}`],
        blocks: [
          {
            kind: 'table',
            id: 't',
            headers: ['name', 'value'],
            rows: [
              [cell(HOSTILE), cell('0.50', 0.5)],
              [cell('missing'), cell('-', null)],
            ],
          },
          {
            kind: 'bars',
            id: 'b',
            title: 'bars',
            series: ['a', 'b'],
            unit: 'fraction',
            scale: { type: 'linear', min: 0.9, max: 1 },
            groups: [
              {
                label: HOSTILE,
                bars: [
                  { series: 'a', value: 0.95, text: '95%' },
                  { series: 'b', value: NaN, text: '-' },
                ],
              },
              { label: 'g2', bars: [{ series: 'a', value: 0.5, text: 'below the axis' }] },
            ],
          },
          {
            kind: 'bars',
            id: 'log',
            title: 'log',
            series: ['a'],
            scale: { type: 'log' },
            unit: 'ms',
            groups: [
              {
                label: 'x',
                bars: [
                  { series: 'a', value: 0.2, text: '0.2 ms' },
                  { series: 'a', value: 3000, text: '3000 ms' },
                ],
              },
            ],
          },
          { kind: 'lines', id: 'one', title: 'a single point', xLabel: 'epoch', yLabel: 'acc', series: [{ name: HOSTILE, points: [[0, 0.9]] }] },
          {
            kind: 'lines',
            id: 'gaps',
            title: 'with gaps',
            xLabel: 'step',
            yLabel: 'loss',
            series: [
              {
                name: 'l',
                points: [
                  [1, 2],
                  [2, NaN],
                  [3, 1],
                ],
              },
            ],
          },
        ],
      },
    ],
  };
}

describe('renderHtml', () => {
  const html = renderHtml(doc());

  it('keeps names as text: no markup from them, no script, nothing fetched', () => {
    expect(html).not.toMatch(/<script|<link|<img|src=|url\(/i);
    expect(html).toContain('&lt;/svg&gt;&lt;script&gt;alert(1)&lt;/script&gt;&amp;&quot;&#39;');
    expect(html.match(/<svg /g)).toHaveLength(4);
    expect(html.match(/<\/svg>/g)).toHaveLength(4);
  });

  it('gives every mark its number, and missing numbers neither a number nor a coordinate', () => {
    expect(html).not.toMatch(/NaN|Infinity|undefined/);
    const marks = (id: string) => Number(new RegExp(`data-chart="${id}" data-marks="(\\d+)"`).exec(html)![1]);
    expect([marks('b'), marks('log'), marks('one'), marks('gaps')]).toEqual([3, 2, 1, 2]);
    expect(html).toContain('data-value="0.95"');
    expect(html).toContain('<td data-value="0.5">0.50</td>');
    expect(html).toContain('<td data-value="">-</td>');
    // a value below a truncated axis is drawn as an empty bar, not a negative one
    expect(html).not.toMatch(/width="-/);
  });

  it("labels the axes in the block's unit, and says where a truncated or logarithmic axis starts", () => {
    expect(html).toContain('bars (axis starts at 90%)');
    expect(html).toContain('log (logarithmic axis)');
    expect(html).toMatch(/>0\.1 ms</);
    expect(html).toMatch(/>10000 ms</);
  });
});

describe('renderText', () => {
  it('prints the notes and tables, with names made printable', () => {
    const d = doc();
    d.sections[0]!.notes!.push('bell \x07 and escape \x1b[2J');
    const text = renderText(d);
    expect(text).toContain('numbers:');
    expect(text).toMatch(/^name\s+value$/m);
    expect(text).toContain('\\x07');
    expect(text).not.toMatch(/[\x07\x1b]/);
    expect(text).not.toMatch(/<svg|<rect|<circle|<polyline/);
  });
});
