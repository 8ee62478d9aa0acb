// pcm-worklet.js -- AudioWorklet that turns the microphone into what the
// gateway takes: 16 kHz, 16-bit little-endian, mono PCM in 100 ms chunks
// (3200 bytes), posted to the page, which sends each as one binary frame.
//
// It runs on the audio thread, so the page's work (rendering captions) can
// never make it miss samples. Browsers capture at 44.1 or 48 kHz and will not
// reliably resample a microphone stream for us (Firefox refuses to connect a
// source to a context of another rate), so resampling happens here: a
// windowed-sinc low-pass interpolator evaluated at each output instant.
// Plain decimation would fold everything above 8 kHz back into the speech
// band, which hurts recognition.

/* global sampleRate, registerProcessor, AudioWorkletProcessor */

const OUT_RATE = 16000;
const FRAME_SAMPLES = 1600; // 100 ms at 16 kHz: inside the gateway's preferred 100-200 ms
const TABLE_STEPS = 256; // kernel samples per input sample, linearly interpolated

class Pcm16kProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.step = sampleRate / OUT_RATE; // input samples per output sample
    this.passthrough = sampleRate === OUT_RATE;
    // Cut a little below the lower Nyquist frequency so the filter's slope
    // is done by 8 kHz; wider kernels when decimating keep the slope steep.
    const cutoff = 0.45 * Math.min(sampleRate, OUT_RATE);
    const fc = cutoff / sampleRate; // cycles per input sample
    this.half = Math.ceil(8 * Math.max(1, this.step)); // kernel half-width, input samples
    this.table = new Float32Array(this.half * TABLE_STEPS + 2);
    for (let i = 0; i < this.table.length; i++) {
      const x = i / TABLE_STEPS; // distance from the centre in input samples
      const u = Math.min(1, x / this.half);
      const sinc = x === 0 ? 1 : Math.sin(2 * Math.PI * fc * x) / (2 * Math.PI * fc * x);
      const blackman = 0.42 + 0.5 * Math.cos(Math.PI * u) + 0.08 * Math.cos(2 * Math.PI * u);
      this.table[i] = sinc * blackman;
    }
    this.input = new Float32Array(8192);
    this.inputLen = 0;
    // first output instant: far enough in that the whole kernel has history
    this.pos = this.passthrough ? 0 : this.half;
    this.frame = new ArrayBuffer(FRAME_SAMPLES * 2);
    this.view = new DataView(this.frame);
    this.frameLen = 0;
    this.peak = 0;
  }

  kernel(x) {
    const t = Math.abs(x) * TABLE_STEPS;
    const i = Math.floor(t);
    if (i >= this.table.length - 1) return 0;
    const f = t - i;
    return this.table[i] * (1 - f) + this.table[i + 1] * f;
  }

  push(sample) {
    const s = Math.max(-1, Math.min(1, sample));
    this.view.setInt16(this.frameLen * 2, Math.round(s < 0 ? s * 0x8000 : s * 0x7fff), true);
    this.frameLen++;
    if (this.frameLen === FRAME_SAMPLES) {
      // the buffer is transferred, not copied: a fresh one for the next frame
      this.port.postMessage({ pcm: this.frame, peak: this.peak }, [this.frame]);
      this.frame = new ArrayBuffer(FRAME_SAMPLES * 2);
      this.view = new DataView(this.frame);
      this.frameLen = 0;
      this.peak = 0;
    }
  }

  append(block) {
    if (this.inputLen + block.length > this.input.length) {
      const bigger = new Float32Array((this.inputLen + block.length) * 2);
      bigger.set(this.input.subarray(0, this.inputLen));
      this.input = bigger;
    }
    this.input.set(block, this.inputLen);
    this.inputLen += block.length;
  }

  process(inputs) {
    const channels = inputs[0];
    if (!channels || channels.length === 0) return true; // no source yet
    // the node is created with channelCount 1 (explicit), so the browser
    // has already mixed down to mono; average anyway in case it did not
    let mono = channels[0];
    if (channels.length > 1) {
      mono = new Float32Array(mono.length);
      for (const ch of channels)
        for (let i = 0; i < ch.length; i++) mono[i] += ch[i] / channels.length;
    }
    for (let i = 0; i < mono.length; i++) this.peak = Math.max(this.peak, Math.abs(mono[i]));
    if (this.passthrough) {
      for (let i = 0; i < mono.length; i++) this.push(mono[i]);
      return true;
    }
    this.append(mono);
    const buf = this.input;
    const half = this.half;
    while (this.pos + half < this.inputLen) {
      const centre = Math.floor(this.pos);
      let acc = 0;
      let wsum = 0;
      for (let k = centre - half + 1; k <= centre + half; k++) {
        const w = this.kernel(this.pos - k);
        acc += buf[k] * w;
        wsum += w;
      }
      this.push(wsum ? acc / wsum : 0); // normalised: unity gain at DC whatever the phase
      this.pos += this.step;
    }
    // keep only the history the next output still needs
    const drop = Math.floor(this.pos) - half;
    if (drop > 0) {
      buf.copyWithin(0, drop, this.inputLen);
      this.inputLen -= drop;
      this.pos -= drop;
    }
    return true;
  }
}

registerProcessor('pcm16k', Pcm16kProcessor);
