// The live protocol's checks (amadeus/live/protocol.py): a client's message, its type, a finite
// time and its fields in range, refused with the same words the server uses. The message types,
// their fields, the limits and the settings' ranges all come from the manifest.

export class ProtocolError extends Error {}

// A client message (JSON text, or the object a page posts), checked; numbers of settings become
// floats as in Python. Throws ProtocolError.
export function parse(message, manifest) {
  const limit = manifest.limits.message_bytes;
  if (typeof message === "string") {
    if (message.length > limit) throw new ProtocolError(`message of ${message.length} bytes: the limit is ${limit}`);
    try {
      message = JSON.parse(message);
    } catch (e) {
      throw new ProtocolError(`not JSON: ${e.message}`);
    }
  }
  if (message === null || typeof message !== "object" || Array.isArray(message)) {
    throw new ProtocolError("a message is a JSON object");
  }
  message = { ...message };
  const { fields, time_range: range } = manifest.messages;
  const kind = message.type;
  if (!Object.hasOwn(fields, kind)) {
    throw new ProtocolError(`unknown message type ${repr(kind)} (known: ${Object.keys(fields).join(", ")})`);
  }
  number(message, "time", -range, range);
  for (const name of fields[kind]) {
    if (!(name in message)) throw new ProtocolError(`${kind}: no ${name}`);
  }
  if (kind === "note_on" || kind === "note_off") integer(message, "pitch", 0, 127);
  if (kind === "note_on") integer(message, "velocity", 1, 127);
  if (kind === "pedal") {
    integer(message, "controller", 0, 127);
    integer(message, "value", 0, 127);
  }
  if (kind === "hello" && message.protocol !== manifest.protocol) {
    throw new ProtocolError(`protocol ${repr(message.protocol)}: this server speaks ${manifest.protocol}`);
  }
  if (kind === "settings") settingsOf(message, manifest);
  return message;
}

// The settings a "settings" message changes, each checked.
export function settingsOf(message, manifest) {
  const { client_ranges: ranges, nullable } = manifest.live;
  const changes = {};
  for (const [name, value] of Object.entries(message)) {
    if (name !== "type" && name !== "time") changes[name] = value;
  }
  for (const [name, value] of Object.entries(changes)) {
    if (!Object.hasOwn(ranges, name)) {
      throw new ProtocolError(`settings: unknown setting ${repr(name)} (known: ${Object.keys(ranges).join(", ")})`);
    }
    const bounds = ranges[name];
    if (bounds === null) {
      if (typeof value !== "boolean") throw new ProtocolError(`settings: ${name} is true or false`);
    } else if (!(nullable.includes(name) && value === null)) number(changes, name, ...bounds);
  }
  return changes;
}

function number(message, name, low, high) {
  const value = message[name];
  if (typeof value !== "number" || !(low <= value && value <= high)) {
    throw new ProtocolError(`${message.type ?? "settings"}: ${name} must be a number in ${g(low)}..${g(high)}`);
  }
}

function integer(message, name, low, high) {
  const value = message[name];
  if (!Number.isInteger(value) || value < low || value > high) {
    throw new ProtocolError(`${message.type}: ${name} must be an integer in ${low}..${high}`);
  }
}

// Python's repr of a JSON value, as the server's messages quote it.
function repr(value) {
  if (value === undefined || value === null) return "None";
  if (typeof value === "string") return `'${value}'`;
  if (typeof value === "boolean") return value ? "True" : "False";
  return JSON.stringify(value);
}

// Python's "{:g}": six significant digits, exponent notation below 1e-4 and from 1e6.
function g(x) {
  const [mantissa, exponent] = x.toExponential(5).split("e");
  const e = Number(exponent);
  if (e < -4 || e >= 6) {
    const digits = mantissa.replace(/\.?0+$/, "");
    return `${digits}e${e < 0 ? "-" : "+"}${String(Math.abs(e)).padStart(2, "0")}`;
  }
  return String(Number(x.toPrecision(6)));
}

// Engine outputs as protocol messages: consecutive notes go in one "notes" message.
export function messages(outputs) {
  const out = [];
  for (const item of outputs) {
    if (item.type !== "note") {
      out.push(item);
      continue;
    }
    const event = { time: item.time, pitch: item.pitch, velocity: item.velocity };
    const last = out[out.length - 1];
    if (last?.type === "notes") last.events.push(event);
    else out.push({ type: "notes", events: [event] });
  }
  return out;
}
