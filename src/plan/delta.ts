// Whether a new generation goes out as the delta form or the full form, and whether the periodic
// resync goes out as the check form (docs/event-contract.md, "Delta form"). Pure: the controller
// hands in what it knows and fires what this says.

export interface FormInput {
  /** publish.delta */
  readonly enabled: boolean;
  /**
   * The list the delta would apply to was published by this process (since it started, or since it
   * last became leader): the first publish after either is full.
   */
  readonly publishedBefore: boolean;
  /** Entries of the new list, both families together. */
  readonly entries: number;
  /** publish.deltaMinEntries: smaller lists always travel in full. */
  readonly minEntries: number;
  /**
   * Bytes of the delta's JSON and of the full payload's (the same generation); asked for only when
   * every other condition holds, so that a delta is built only when it may be fired.
   */
  readonly sizes: () => { readonly delta: number; readonly full: number };
}

export type FormChoice = { readonly form: 'delta' } | { readonly form: 'full'; readonly why: 'disabled' | 'first' | 'small' | 'not-smaller' };

/** Delta only when every condition holds; otherwise full, with the first condition that failed. */
export function chooseForm(i: FormInput): FormChoice {
  if (!i.enabled) return { form: 'full', why: 'disabled' };
  if (!i.publishedBefore) return { form: 'full', why: 'first' };
  if (i.entries < i.minEntries) return { form: 'full', why: 'small' };
  const bytes = i.sizes();
  if (!(bytes.delta * 2 < bytes.full)) return { form: 'full', why: 'not-smaller' };
  return { form: 'delta' };
}
