/**
 * A UTF-16 surrogate without its pair: not a character. PostgreSQL stores it as U+FFFD, so text
 * holding one does not read back as it was written (a hash over it would no longer match).
 */
export const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export const isWellFormed = (text: string): boolean => !LONE_SURROGATE.test(text);
