// qr.js -- a small QR Code encoder (ISO/IEC 18004) for the listener link.
//
// Written here rather than fetched from a CDN because the pages load nothing
// from outside the machine. It covers only what a URL needs: byte mode,
// error correction level M (15 % of the symbol can be damaged or covered),
// versions 1 to 10 (up to 213 bytes), and draws the symbol as SVG so it
// scales crisply on a projector.

// Level M block structure per version: [EC codewords per block,
// [count, data codewords per block], ...]
const BLOCKS_M = [
  null,
  [10, [1, 16]],
  [16, [1, 28]],
  [26, [1, 44]],
  [18, [2, 32]],
  [24, [2, 43]],
  [16, [4, 27]],
  [18, [4, 31]],
  [22, [2, 38], [2, 39]],
  [22, [3, 36], [2, 37]],
  [26, [4, 43], [1, 44]],
];

// Alignment pattern centres per version.
const ALIGN = [
  null,
  [],
  [6, 18],
  [6, 22],
  [6, 26],
  [6, 30],
  [6, 34],
  [6, 22, 38],
  [6, 24, 42],
  [6, 26, 46],
  [6, 28, 50],
];

const MAX_VERSION = 10;
const EC_LEVEL_M_BITS = 0; // the format field's two bits for level M

// ------------------------------------------------------------ Reed-Solomon

// Multiplication in GF(2^8) modulo x^8 + x^4 + x^3 + x^2 + 1 (0x11D).
function gfMul(x, y) {
  let z = 0;
  for (let i = 7; i >= 0; i--) {
    z = (z << 1) ^ ((z >>> 7) * 0x11d);
    z ^= ((y >>> i) & 1) * x;
  }
  return z;
}

// Coefficients of prod (x - 2^i), i < degree, highest first, leading 1 dropped.
function rsDivisor(degree) {
  const result = new Array(degree).fill(0);
  result[degree - 1] = 1;
  let root = 1;
  for (let i = 0; i < degree; i++) {
    for (let j = 0; j < degree; j++) {
      result[j] = gfMul(result[j], root);
      if (j + 1 < degree) result[j] ^= result[j + 1];
    }
    root = gfMul(root, 2);
  }
  return result;
}

function rsRemainder(data, divisor) {
  const result = new Array(divisor.length).fill(0);
  for (const b of data) {
    const factor = b ^ result.shift();
    result.push(0);
    for (let i = 0; i < divisor.length; i++) result[i] ^= gfMul(divisor[i], factor);
  }
  return result;
}

// ------------------------------------------------------------ data

function dataCapacity(version) {
  const [, ...groups] = BLOCKS_M[version];
  return groups.reduce((n, [count, len]) => n + count * len, 0);
}

/** Smallest version whose level-M capacity holds n bytes, or 0. */
function chooseVersion(n) {
  for (let v = 1; v <= MAX_VERSION; v++) {
    const countBits = v < 10 ? 8 : 16;
    if (4 + countBits + 8 * n <= dataCapacity(v) * 8) return v;
  }
  return 0;
}

/** Byte mode segment, terminator, padding: the data codewords. */
function encodeData(bytes, version) {
  const bits = [];
  const put = (value, len) => {
    for (let i = len - 1; i >= 0; i--) bits.push((value >>> i) & 1);
  };
  const capBits = dataCapacity(version) * 8;
  put(0b0100, 4);
  put(bytes.length, version < 10 ? 8 : 16);
  for (const b of bytes) put(b, 8);
  put(0, Math.min(4, capBits - bits.length));
  put(0, (8 - (bits.length % 8)) % 8);
  const out = [];
  for (let i = 0; i < bits.length; i += 8) {
    out.push(bits.slice(i, i + 8).reduce((acc, bit) => (acc << 1) | bit, 0));
  }
  for (let pad = 0xec; out.length < capBits / 8; pad ^= 0xec ^ 0x11) out.push(pad);
  return out;
}

/** Split into blocks, add each block's EC codewords, interleave. */
function addEcAndInterleave(data, version) {
  const [ecLen, ...groups] = BLOCKS_M[version];
  const divisor = rsDivisor(ecLen);
  const blocks = [];
  let k = 0;
  for (const [count, len] of groups) {
    for (let i = 0; i < count; i++) {
      const d = data.slice(k, k + len);
      k += len;
      blocks.push({ data: d, ec: rsRemainder(d, divisor) });
    }
  }
  const result = [];
  const maxLen = Math.max(...blocks.map((b) => b.data.length));
  for (let i = 0; i < maxLen; i++) {
    for (const b of blocks) if (i < b.data.length) result.push(b.data[i]);
  }
  for (let i = 0; i < ecLen; i++) for (const b of blocks) result.push(b.ec[i]);
  return result;
}

// ------------------------------------------------------------ matrix

class QrMatrix {
  constructor(version) {
    this.version = version;
    this.size = version * 4 + 17;
    this.dark = Array.from({ length: this.size }, () => new Uint8Array(this.size));
    this.fixed = Array.from({ length: this.size }, () => new Uint8Array(this.size));
  }

  setFixed(x, y, dark) {
    this.dark[y][x] = dark ? 1 : 0;
    this.fixed[y][x] = 1;
  }

  drawFunctionPatterns() {
    const n = this.size;
    for (let i = 0; i < n; i++) {
      this.setFixed(6, i, i % 2 === 0);
      this.setFixed(i, 6, i % 2 === 0);
    }
    for (const [cx, cy] of [
      [3, 3],
      [n - 4, 3],
      [3, n - 4],
    ]) {
      // finder plus its light separator: rings at distance 2 and 4 are light
      for (let dy = -4; dy <= 4; dy++) {
        for (let dx = -4; dx <= 4; dx++) {
          const x = cx + dx;
          const y = cy + dy;
          const dist = Math.max(Math.abs(dx), Math.abs(dy));
          if (x >= 0 && x < n && y >= 0 && y < n) this.setFixed(x, y, dist !== 2 && dist !== 4);
        }
      }
    }
    const pos = ALIGN[this.version];
    const last = pos.length - 1;
    for (let i = 0; i < pos.length; i++) {
      for (let j = 0; j < pos.length; j++) {
        if ((i === 0 && j === 0) || (i === 0 && j === last) || (i === last && j === 0)) continue;
        for (let dy = -2; dy <= 2; dy++) {
          for (let dx = -2; dx <= 2; dx++) {
            this.setFixed(pos[i] + dx, pos[j] + dy, Math.max(Math.abs(dx), Math.abs(dy)) !== 1);
          }
        }
      }
    }
    this.drawFormat(0); // reserve the format areas; the real bits come with the mask
    this.drawVersion();
  }

  drawFormat(mask) {
    const data = (EC_LEVEL_M_BITS << 3) | mask;
    let rem = data;
    for (let i = 0; i < 10; i++) rem = (rem << 1) ^ ((rem >>> 9) * 0x537);
    const bits = ((data << 10) | rem) ^ 0x5412;
    const bit = (i) => (bits >>> i) & 1;
    const n = this.size;
    for (let i = 0; i <= 5; i++) this.setFixed(8, i, bit(i));
    this.setFixed(8, 7, bit(6));
    this.setFixed(8, 8, bit(7));
    this.setFixed(7, 8, bit(8));
    for (let i = 9; i < 15; i++) this.setFixed(14 - i, 8, bit(i));
    for (let i = 0; i < 8; i++) this.setFixed(n - 1 - i, 8, bit(i));
    for (let i = 8; i < 15; i++) this.setFixed(8, n - 15 + i, bit(i));
    this.setFixed(8, n - 8, 1); // the dark module
  }

  drawVersion() {
    if (this.version < 7) return;
    let rem = this.version;
    for (let i = 0; i < 12; i++) rem = (rem << 1) ^ ((rem >>> 11) * 0x1f25);
    const bits = (this.version << 12) | rem;
    for (let i = 0; i < 18; i++) {
      const dark = (bits >>> i) & 1;
      const a = this.size - 11 + (i % 3);
      const b = Math.floor(i / 3);
      this.setFixed(a, b, dark);
      this.setFixed(b, a, dark);
    }
  }

  /** Codeword bits in the two-column zigzag, skipping function modules. */
  drawCodewords(codewords) {
    const n = this.size;
    let i = 0;
    for (let right = n - 1; right >= 1; right -= 2) {
      if (right === 6) right = 5; // the vertical timing pattern is skipped whole
      const upward = ((right + 1) & 2) === 0;
      for (let vert = 0; vert < n; vert++) {
        const y = upward ? n - 1 - vert : vert;
        for (let j = 0; j < 2; j++) {
          const x = right - j;
          if (this.fixed[y][x] || i >= codewords.length * 8) continue;
          this.dark[y][x] = (codewords[i >>> 3] >>> (7 - (i & 7))) & 1;
          i++;
        }
      }
    }
  }

  applyMask(mask) {
    const test = [
      (x, y) => (x + y) % 2 === 0,
      (x, y) => y % 2 === 0,
      (x) => x % 3 === 0,
      (x, y) => (x + y) % 3 === 0,
      (x, y) => (Math.floor(x / 3) + Math.floor(y / 2)) % 2 === 0,
      (x, y) => ((x * y) % 2) + ((x * y) % 3) === 0,
      (x, y) => (((x * y) % 2) + ((x * y) % 3)) % 2 === 0,
      (x, y) => (((x + y) % 2) + ((x * y) % 3)) % 2 === 0,
    ][mask];
    for (let y = 0; y < this.size; y++) {
      for (let x = 0; x < this.size; x++) {
        if (!this.fixed[y][x] && test(x, y)) this.dark[y][x] ^= 1;
      }
    }
  }

  /** The standard's four penalty rules; the lowest-scoring mask is used so
   *  that the symbol has no large blocks or finder look-alikes. */
  penalty() {
    const n = this.size;
    const m = this.dark;
    let score = 0;
    const at = (x, y, vertical) => (vertical ? m[x][y] : m[y][x]);
    for (const vertical of [false, true]) {
      for (let y = 0; y < n; y++) {
        let run = 1;
        for (let x = 1; x <= n; x++) {
          if (x < n && at(x, y, vertical) === at(x - 1, y, vertical)) {
            run++;
            continue;
          }
          if (run >= 5) score += 3 + run - 5;
          run = 1;
        }
        // 1:1:3:1:1 with four light modules on one side
        for (let x = 0; x + 11 <= n; x++) {
          let a = true;
          let b = true;
          const pattern = [1, 0, 1, 1, 1, 0, 1];
          for (let k = 0; k < 7; k++) {
            if (at(x + k, y, vertical) !== pattern[k]) a = false;
            if (at(x + 4 + k, y, vertical) !== pattern[k]) b = false;
          }
          for (let k = 0; k < 4; k++) {
            if (at(x + 7 + k, y, vertical)) a = false;
            if (at(x + k, y, vertical)) b = false;
          }
          if (a) score += 40;
          if (b) score += 40;
        }
      }
    }
    let dark = 0;
    for (let y = 0; y < n; y++) {
      for (let x = 0; x < n; x++) {
        dark += m[y][x];
        if (x + 1 < n && y + 1 < n) {
          const c = m[y][x];
          if (m[y][x + 1] === c && m[y + 1][x] === c && m[y + 1][x + 1] === c) score += 3;
        }
      }
    }
    const total = n * n;
    score += (Math.ceil(Math.abs(dark * 20 - total * 10) / total) - 1) * 10;
    return score;
  }
}

/**
 * Encode text (UTF-8) as a QR symbol at level M.
 * Returns { size, version, mask, dark: rows of 0/1 } or throws if the text
 * needs more than version 10. options.mask (0-7) forces a mask (tests).
 */
export function encodeQr(text, options = {}) {
  const bytes = Array.from(new TextEncoder().encode(text));
  const version = chooseVersion(bytes.length);
  if (!version) throw new RangeError('text too long for a version 1-10 QR code');
  const codewords = addEcAndInterleave(encodeData(bytes, version), version);
  const build = (mask) => {
    const s = new QrMatrix(version);
    s.drawFunctionPatterns();
    s.drawCodewords(codewords);
    s.applyMask(mask);
    s.drawFormat(mask);
    return s;
  };
  let best = null;
  let bestMask = 0;
  const masks = options.mask === undefined ? [0, 1, 2, 3, 4, 5, 6, 7] : [options.mask];
  for (const mask of masks) {
    const s = build(mask);
    const p = masks.length > 1 ? s.penalty() : 0;
    if (!best || p < best.p) {
      best = { s, p };
      bestMask = mask;
    }
  }
  return { size: best.s.size, version, mask: bestMask, dark: best.s.dark };
}

/** An <svg> of the symbol with a four-module quiet zone, one path for all
 *  dark modules (horizontal runs merged), labelled for assistive tech. */
export function qrSvg(text, label = text) {
  const qr = encodeQr(text);
  const quiet = 4;
  const dim = qr.size + quiet * 2;
  const NS = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('viewBox', `0 0 ${dim} ${dim}`);
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', label);
  svg.setAttribute('shape-rendering', 'crispEdges');
  const bg = document.createElementNS(NS, 'rect');
  bg.setAttribute('width', dim);
  bg.setAttribute('height', dim);
  bg.setAttribute('fill', '#fff');
  const path = document.createElementNS(NS, 'path');
  let d = '';
  for (let y = 0; y < qr.size; y++) {
    for (let x = 0; x < qr.size; x++) {
      if (!qr.dark[y][x]) continue;
      let run = 1;
      while (x + run < qr.size && qr.dark[y][x + run]) run++;
      d += `M${x + quiet} ${y + quiet}h${run}v1h-${run}z`;
      x += run - 1;
    }
  }
  path.setAttribute('d', d);
  path.setAttribute('fill', '#000');
  svg.append(bg, path);
  return svg;
}
