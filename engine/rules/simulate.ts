/**
 * `consentflow rules simulate`: replays a log of Segment-format events through a rule set in virtual
 * time, with no database, queue or mail server, and tells per person what would happen and when.
 * It plays the parts of the engine around the pure evaluator as the engine does (simulate-run.ts),
 * and each send is checked again when it is due (simulate-send.ts).
 *
 * This module is the public face; one concern per file behind it:
 * - simulate-input.ts     the events file: parsing and validation
 * - simulate-run.ts       the replay loop, events, segments, broadcasts
 * - simulate-journeys.ts  enrolments, journey actions, exits
 * - simulate-send.ts      a send when it is due
 * - simulate-world.ts, simulate-person.ts, simulate-agenda.ts   the run's state, people, virtual time
 * - simulate-timeline.ts  the result
 * - simulate-report.ts    the text report
 * - simulate-html.ts      the HTML timeline (its geometry: simulate-html-layout.ts)
 */

export { parseSimEvents, SimEvent, type SimEventsParse } from './simulate-input';
export { simulate } from './simulate-run';
export { entriesByPerson, type SimulateOptions, type Timeline, type TimelineEntry, type TimelineKind } from './simulate-timeline';
export { formatTimeline } from './simulate-report';
export { renderSimulationHtml, type SimulationHtmlOptions } from './simulate-html';
