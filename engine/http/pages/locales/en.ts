/**
 * The English words of the pages people open from emails (unsubscribe, preferences, double opt-in
 * confirmation, "forget me") and of their error pages. The purposes' descriptions come from
 * rules/purposes.yaml; these only frame them. Information to people must be in clear and plain
 * language (GDPR Art. 12(1)), in a language they understand: every key exists in every language
 * (pl.ts is typed from this table, and test/unit/page-strings.test.ts compares the keys).
 *
 * `{name}` marks a value filled in at render time; every language keeps the same placeholders.
 */
export const EN = {
  // Any page.
  invalidTitle: 'This link is not valid',
  crossSiteTitle: 'This form was sent from another website',
  crossSiteBody: 'Nothing was changed: {reason}. A page of another website may have tried to act in your name.',
  crossSiteAgain: 'If it was you, open the link from our email again and use the form on that page.',
  crossSiteFetchSite: 'your browser says it was sent from another website',
  crossSiteUnverifiable: 'it was sent from a page whose origin cannot be verified',
  crossSiteOtherOrigin: 'it was sent from another website',

  // Unsubscribe, /u/:token (RFC 8058).
  unsubscribeTitle: 'Unsubscribe',
  unsubscribeQuestion: 'Do you want to stop receiving these emails?',
  unsubscribeButton: 'Unsubscribe',
  unsubscribeKeep: 'If you want to keep receiving them, just close this page: nothing changes without your click.',
  unsubscribedTitle: 'You are unsubscribed',
  unsubscribedBody: 'You will get no more of these emails. Nothing else is needed.',
  unsubscribeInvalidBody: 'This unsubscribe link is incomplete or has been altered, so nothing was changed. Use the link from the email itself.',
  unsubscribeGoneTitle: 'Nothing to unsubscribe from',
  unsubscribeGoneBody: 'We hold no data about you any more, so there is nothing to unsubscribe from.',

  // Preferences, /p/:token.
  prefsTitle: 'Your privacy choices',
  prefsIntro: 'Here is what we may do with your data and what you have chosen. Change any of it; it takes effect at once.',
  prefsChoices: 'What you allow us to do',
  prefsConsent: 'Legal basis: your consent (GDPR Art. 6(1)(a)).',
  prefsLegitimate: 'Legal basis: our legitimate interest (GDPR Art. 6(1)(f)); untick to object.',
  prefsSave: 'Save my choices',
  prefsSaved: 'Your choices are saved.',
  prefsPending: 'Waiting for you to confirm by the link we emailed.',
  prefsInvalidBody: 'This preferences link is incomplete or has been altered, so nothing was shown or changed. Use the link from one of our emails.',
  prefsGoneTitle: 'We hold no data about you',
  prefsGoneBody: 'There is nothing to choose: we hold no data linked to this link any more.',

  // "Forget me" (GDPR Art. 17): the section of the preference page and /f/:token.
  forgetSection: 'Erase all my data',
  forgetExplain: 'We delete your profile, activity, consents and subscriptions, everywhere we keep them, and stop all emails. We email you a link to confirm first.',
  forgetAsk: 'Email me the confirmation link',
  forgetSentTitle: 'Check your mailbox',
  forgetSent: 'We have emailed you a link. Open it to confirm; nothing is erased until you do.',
  forgetConfirmTitle: 'Erase all your data?',
  forgetConfirmBody: 'This deletes everything we hold about you and cannot be undone. You will receive no more email from us.',
  forgetConfirm: 'Yes, erase my data',
  forgetKeep: 'If you changed your mind, just close this page: nothing is erased without your click.',
  forgetDoneTitle: 'Your data is being erased',
  forgetDoneBody: 'Your request is recorded under reference {id}. The erasure runs within minutes, at the latest within 30 days (GDPR Art. 12(3)).',
  forgetInvalidBody: 'This link is incomplete, altered or expired, so nothing was erased. Ask again from your preference page.',
  forgetGoneTitle: 'We hold no data about you',
  forgetGoneBody: 'There is nothing left to erase.',

  // Double opt-in, /v1/consent/confirm.
  confirmTitle: 'Confirm your subscription',
  confirmQuestion: 'Please confirm that you want to receive our emails.',
  confirmButton: 'Yes, subscribe me',
  confirmIgnore: 'If you did not sign up, ignore this page: nothing happens without your click, and the request lapses on {date}.',
  confirmInvalidBody: 'This confirmation link is incomplete or has been altered, so nothing was changed. Open the link from the email again, or sign up again to get a new one.',
  confirmExpiredTitle: 'This link has expired',
  confirmExpiredBody: 'This confirmation link has expired, so nothing was changed. Sign up again to get a new one.',
  confirmGoneTitle: 'This link is no longer valid',
  confirmGoneBody: 'We hold no sign-up for this link any more, so nothing was changed.',
  confirmedTitle: 'Subscription confirmed',
  confirmedNow: 'Thank you: your subscription is confirmed.',
  confirmedBefore: 'Your subscription was already confirmed.',
  confirmedPrefs: 'You can change your choices or unsubscribe at any time on {link}.',
  confirmedPrefsLink: 'your preferences page',

  // A tracked link of an email, /c/:token, that is not ours (tracked-link-page.ts).
  trackedLinkInvalidBody: 'This link is incomplete or has been altered. Open it again from the email.',
} as const;

export type PageStringKey = keyof typeof EN;
export type PageStrings = { readonly [K in PageStringKey]: string };
