// Shared helpers for the TF.js reference and benchmark scripts: loading a TF.js graph model
// from disk without a network (custom IOHandler), and .npy files in and out.
import fs from 'node:fs';
import path from 'node:path';

/** A tf.io.IOHandler that reads model.json and its shards from the local disk. */
export function fileHandler(modelJsonPath) {
  return {
    async load() {
      const m = JSON.parse(fs.readFileSync(modelJsonPath, 'utf8'));
      const dir = path.dirname(modelJsonPath);
      const specs = [];
      const bufs = [];
      for (const g of m.weightsManifest) {
        specs.push(...g.weights);
        for (const p of g.paths) bufs.push(fs.readFileSync(path.join(dir, p)));
      }
      const all = Buffer.concat(bufs);
      const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
      return {
        modelTopology: m.modelTopology,
        weightSpecs: specs,
        weightData,
        format: m.format,
        generatedBy: m.generatedBy,
        convertedBy: m.convertedBy,
        signature: m.signature,
        userDefinedMetadata: m.userDefinedMetadata,
      };
    },
  };
}

const DESCR = { int32: '<i4', float32: '<f4' };

export function writeNpy(file, dtype, shape, data) {
  const shp = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${DESCR[dtype]}', 'fortran_order': False, 'shape': ${shp}, }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const pre = Buffer.alloc(10);
  pre.write('\x93NUMPY', 0, 'latin1');
  pre[6] = 1;
  pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  const arr = dtype === 'int32' ? Int32Array.from(data) : Float32Array.from(data);
  fs.writeFileSync(file, Buffer.concat([pre, Buffer.from(header, 'latin1'), Buffer.from(arr.buffer)]));
}

export function readNpy(file) {
  const b = fs.readFileSync(file);
  const hlen = b.readUInt16LE(8);
  const header = b.slice(10, 10 + hlen).toString('latin1');
  const descr = /'descr':\s*'([^']+)'/.exec(header)[1];
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header)[1].split(',').map((s) => s.trim()).filter((s) => s).map(Number);
  const raw = b.slice(10 + hlen);
  const ab = raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength);
  if (descr === '<i4') return { dtype: 'int32', shape, data: new Int32Array(ab) };
  if (descr === '<f4') return { dtype: 'float32', shape, data: new Float32Array(ab) };
  throw new Error(`${file}: unsupported dtype ${descr}`);
}
