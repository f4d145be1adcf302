import type { LegalBasis } from '../../../schemas/purposes-file';

/**
 * The website kit's own words (the pop-up's buttons, the form messages) in the languages it ships.
 * The purposes' descriptions and the notice texts come from rules/purposes.yaml; these only frame
 * them. Consent must be asked in clear and plain language (GDPR Art. 7(2), 12(1)), so every string
 * exists in every language: a test compares the keys.
 */
export const KIT_TEXT = {
  en: {
    title: 'Your privacy choices',
    purposes: 'What we ask you to agree to',
    acceptAll: 'Accept all',
    rejectAll: 'Reject all',
    save: 'Save my choices',
    changeLater: 'You can change your choice or withdraw your consent at any time under “Privacy settings”.',
    preferences: 'Manage all your privacy preferences',
    gpc: 'Your browser sends Global Privacy Control: we do not identify this browser, whatever you choose here.',
    privacySettings: 'Privacy settings',
    privacyRegion: 'Privacy',
    formPending: 'Thank you! Please confirm your subscription with the link we have just emailed you.',
    formDone: 'Thank you, your choice is saved.',
    formUnticked: 'Nothing was sent: tick the box if you agree.',
    formError: 'Sorry, that did not work. Please check the form and try again.',
  },
  pl: {
    title: 'Twoje wybory dotyczące prywatności',
    purposes: 'Na co prosimy Cię o zgodę',
    acceptAll: 'Akceptuj wszystkie',
    rejectAll: 'Odrzuć wszystkie',
    save: 'Zapisz moje wybory',
    changeLater: 'W każdej chwili możesz zmienić wybór lub wycofać zgodę w „Ustawieniach prywatności”.',
    preferences: 'Zarządzaj wszystkimi ustawieniami prywatności',
    gpc: 'Twoja przeglądarka wysyła sygnał Global Privacy Control: nie identyfikujemy tej przeglądarki, niezależnie od Twojego wyboru.',
    privacySettings: 'Ustawienia prywatności',
    privacyRegion: 'Prywatność',
    formPending: 'Dziękujemy! Potwierdź subskrypcję, klikając link, który właśnie wysłaliśmy Ci e-mailem.',
    formDone: 'Dziękujemy, Twój wybór został zapisany.',
    formUnticked: 'Niczego nie wysłano: zaznacz pole, jeśli się zgadzasz.',
    formError: 'Niestety się nie udało. Sprawdź formularz i spróbuj ponownie.',
  },
} as const satisfies Record<string, Record<string, string>>;

export type KitLanguage = keyof typeof KIT_TEXT;
export const KIT_LANGUAGES = Object.keys(KIT_TEXT) as KitLanguage[];

const LEGAL_BASIS: Record<KitLanguage, Record<LegalBasis, string>> = {
  en: {
    consent: 'Legal basis: your consent (GDPR Art. 6(1)(a)).',
    legitimate_interest: 'Legal basis: our legitimate interest (GDPR Art. 6(1)(f)); untick to object.',
  },
  pl: {
    consent: 'Podstawa prawna: Twoja zgoda (art. 6 ust. 1 lit. a RODO).',
    legitimate_interest: 'Podstawa prawna: nasz prawnie uzasadniony interes (art. 6 ust. 1 lit. f RODO); odznacz, aby wnieść sprzeciw.',
  },
};

export function legalBasisText(lang: KitLanguage, basis: LegalBasis): string {
  return LEGAL_BASIS[lang][basis];
}

type Unit = 'd' | 'w' | 'mo' | 'y';

const EN_UNITS: Record<Unit, [string, string]> = { d: ['day', 'days'], w: ['week', 'weeks'], mo: ['month', 'months'], y: ['year', 'years'] };
// Polish nouns after a number: 1; 2-4 (but not 12-14); everything else.
const PL_UNITS: Record<Unit, [string, string, string]> = {
  d: ['dzień', 'dni', 'dni'],
  w: ['tydzień', 'tygodnie', 'tygodni'],
  mo: ['miesiąc', 'miesiące', 'miesięcy'],
  y: ['rok', 'lata', 'lat'],
};

function polishForm(n: number): 0 | 1 | 2 {
  if (n === 1) return 0;
  const tens = n % 100;
  return n % 10 >= 2 && n % 10 <= 4 && (tens < 12 || tens > 14) ? 1 : 2;
}

/** "13mo" → "Kept for 13 months" / "Przechowujemy przez 13 miesięcy". */
export function retentionText(lang: KitLanguage, retention: string): string {
  const match = /^(\d+)(d|w|mo|y)$/.exec(retention);
  if (!match) return retention;
  const n = Number(match[1]);
  const unit = match[2] as Unit;
  if (lang === 'pl') return `Przechowujemy przez ${n} ${PL_UNITS[unit][polishForm(n)]}.`;
  return `Kept for ${n} ${EN_UNITS[unit][n === 1 ? 0 : 1]}.`;
}
