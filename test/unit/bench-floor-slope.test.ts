import { floorSlope, slope } from '../../scripts/bench/pipeline-sample';

/** RSS samples every 5 s for 5 minutes: a collector's sawtooth (up 60 MB over 50 s, then back) on a floor rising `trend` MB a minute. */
function sawtooth(trend: number, phase: number): Array<readonly [number, number]> {
  return Array.from({ length: 60 }, (_, i) => {
    const minutes = (i * 5) / 60;
    return [minutes, 180 + trend * minutes + ((i + phase) % 10) * 6] as const;
  });
}

describe('the benchmark judge of "flat" memory', () => {
  it('finds no trend in a sawtooth without one, where a slope fitted to every sample does, depending on where the teeth fall', () => {
    const fitted = [0, 3, 6, 9].map((phase) => slope(sawtooth(0, phase)));
    expect(Math.max(...fitted.map(Math.abs))).toBeGreaterThan(1);
    for (const phase of [0, 3, 6, 9]) expect(Math.abs(floorSlope(sawtooth(0, phase), 1))).toBeLessThan(1);
  });

  it('finds the trend of a floor that rises', () => {
    for (const phase of [0, 5]) expect(floorSlope(sawtooth(5, phase), 1)).toBeGreaterThan(3);
  });
});
