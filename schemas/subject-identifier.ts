import { z } from 'zod';
import { ExternalId } from './external-id';

/** The three ways an admin request names a person; exactly one is given (`oneIdentifier`). */
export const SubjectIdentifierFields = {
  email: z.email({ error: 'expected an email address' }).max(254).optional(),
  userId: ExternalId.optional(),
  anonymousId: ExternalId.optional(),
};

interface Identified {
  email?: string | undefined;
  userId?: string | undefined;
  anonymousId?: string | undefined;
}

/** Exactly one identifier: the request is about one person, found one way. */
export const oneIdentifier: [(r: Identified) => boolean, { message: string; path: PropertyKey[] }] = [
  (r) => [r.email, r.userId, r.anonymousId].filter((v) => v !== undefined).length === 1,
  { message: 'expected exactly one of email, userId, anonymousId', path: ['email'] },
];
