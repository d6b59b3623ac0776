// The model's generation step in the page: the ONNX graph export.py writes
// (amadeus/live/onnx_export.py), run by onnxruntime-web on its WebAssembly backend. The same
// interface as the Python steppers: initial() -> hidden state; step(event, hidden, control) ->
// the next event's logits and the new hidden state. The caller passes the onnxruntime-web module
// (`ort`): the page loads it from the site's own files, Node from web/node_modules.
//
// Hidden state: Float32Array [L * H], layer-major (the graph's [L, 1, H]); control: Float32Array
// [C], or null for the model's "no control" path. Batch 1.
//
// In a browser, loadModel(ort, address of export.py's JSON) fetches both files and checks them.

export class OnnxStepper {
  constructor(ort, session, manifest) {
    const { layers, hidden } = manifest.model;
    const { event_dim, control_dim, initial_hidden } = manifest.onnx;
    if (initial_hidden.length !== layers * hidden) {
      throw new Error(`initial_hidden has ${initial_hidden.length} values, not ${layers} x ${hidden}`);
    }
    this.ort = ort;
    this.session = session;
    this.shape = [layers, 1, hidden];
    this.eventDim = event_dim;
    this.controlDim = control_dim;
    this.start = Float32Array.from(initial_hidden);
    this.noControl = new Float32Array(control_dim);
  }

  // `modelBytes`: the .onnx file (Uint8Array or ArrayBuffer); `manifest`: its JSON (export.py).
  static async create(ort, modelBytes, manifest) {
    const bytes = modelBytes instanceof Uint8Array ? modelBytes : new Uint8Array(modelBytes);
    const session = await ort.InferenceSession.create(bytes, {
      executionProviders: ["wasm"],
      graphOptimizationLevel: "all",
    });
    return new OnnxStepper(ort, session, manifest);
  }

  // The hidden state of a zero init, as the Python stepper starts (a fresh copy each call).
  initial() {
    return this.start.slice();
  }

  async step(event, hidden, control = null) {
    if (!Number.isInteger(event) || event < 0 || event >= this.eventDim) {
      throw new RangeError(`event ${event} is not a token of 0..${this.eventDim - 1}`);
    }
    if (control !== null && control.length !== this.controlDim) {
      throw new RangeError(`control has ${control.length} values, the model takes ${this.controlDim}`);
    }
    if (hidden.length !== this.start.length) {
      throw new RangeError(`hidden has ${hidden.length} values, the model ${this.start.length}`);
    }
    const { Tensor } = this.ort;
    const given = control === null ? this.noControl : floats(control);
    const outputs = await this.session.run({
      event: new Tensor("int64", BigInt64Array.of(BigInt(event)), [1]),
      hidden: new Tensor("float32", floats(hidden), this.shape),
      control: new Tensor("float32", given, [1, this.controlDim]),
      controlled: new Tensor("float32", Float32Array.of(control === null ? 0 : 1), [1, 1]),
    });
    return { logits: outputs.logits.data, hidden: outputs.hidden_out.data };
  }
}

// The model export.py wrote, its JSON at `where` (the .onnx beside it), fetched and checked:
// {manifest, stepper}.
export async function loadModel(ort, where) {
  const manifest = await (await fetched(where)).json();
  const bytes = await (await fetched(new URL(manifest.onnx.file, where))).arrayBuffer();
  await checked(bytes, manifest.onnx.sha256);
  return { manifest, stepper: await OnnxStepper.create(ort, bytes, manifest) };
}

async function fetched(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url.pathname}: ${response.status} ${response.statusText}`);
  return response;
}

// A host that serves something else under the model's name (a Git LFS pointer, an old copy)
// is said at once, not as a broken answer later. Browsers give digests only to secure pages
// (https, localhost); elsewhere it goes unchecked.
async function checked(bytes, sha256) {
  if (!sha256 || !globalThis.crypto?.subtle) return;
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  const hex = [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
  if (hex !== sha256) throw new Error("the model file is not the one its JSON describes");
}

const floats = (values) => (values instanceof Float32Array ? values : Float32Array.from(values));
