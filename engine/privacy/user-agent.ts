import Bowser from 'bowser';

export interface UserAgentSummary {
  browser?: string;
  os?: string;
  deviceType?: string;
}

// Real user agents are a few hundred characters; a longer one is junk or an attack on the parser.
const MAX_LENGTH = 1024;

/**
 * The full user-agent string, with its exact versions and device model, helps single out a person
 * (it is a classic fingerprinting input); the families are all reporting needs. GDPR Art. 5(1)(c),
 * 25: only the summary is stored, never the raw string.
 */
export function summarizeUserAgent(ua: string | undefined): UserAgentSummary | undefined {
  const text = ua?.trim().slice(0, MAX_LENGTH);
  if (!text) return undefined;
  let parser: Bowser.Parser.Parser;
  try {
    parser = Bowser.getParser(text);
  } catch {
    return undefined;
  }
  const summary: UserAgentSummary = {};
  const browser = parser.getBrowserName();
  const os = parser.getOSName();
  // Not getPlatformType(true): it lower-cases an unknown type into the string 'undefined'.
  const deviceType = parser.getPlatformType()?.toLowerCase();
  if (browser) summary.browser = browser;
  if (os) summary.os = os;
  if (deviceType) summary.deviceType = deviceType;
  return Object.keys(summary).length > 0 ? summary : undefined;
}
