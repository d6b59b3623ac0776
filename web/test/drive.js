// What the test scripts do to the page's engine, the same under Node and in a browser's worker
// (no Node API here): step a model teacher-forced, play a phrase event by event.

// Every step's logits over `pieces` ([{events, controls or null}]), piece after piece, each from
// the stepper's initial state and the start token: step t sees events[t - 1] and controls[t], as
// PerformanceRNN.logits. Also the seconds the stepping took.
export async function teacherForced(stepper, startToken, pieces) {
  const chunks = [];
  const began = performance.now();
  for (const { events, controls } of pieces) {
    let hidden = stepper.initial();
    let event = startToken;
    for (let t = 0; t < events.length; t++) {
      const result = await stepper.step(event, hidden, controls ? controls[t] : null);
      chunks.push(result.logits);
      hidden = result.hidden;
      event = events[t];
    }
  }
  const seconds = (performance.now() - began) / 1000;
  return { logits: joined(chunks), steps: chunks.length, seconds };
}

// Every (seconds, kind, args) event played on `phrase`, then its finish at `end` (seconds from
// its origin): each take's tokens, and the newest event's time at each.
export function playPhrase(phrase, events, end) {
  const takes = [];
  const latest = [];
  for (const [seconds, kind, args] of events) {
    const at = phrase.origin + seconds;
    if (kind === "on") phrase.press(at, ...args);
    else if (kind === "off") phrase.release(at, ...args);
    else phrase.sustain(at, ...args);
    takes.push(phrase.takeFinal());
    latest.push(phrase.latest);
  }
  takes.push(phrase.finish(phrase.origin + end));
  return { takes, latest };
}

// Float32Arrays end to end.
export function joined(chunks) {
  const all = new Float32Array(chunks.reduce((n, c) => n + c.length, 0));
  chunks.reduce((at, c) => (all.set(c, at), at + c.length), 0);
  return all;
}
