/**
 * The UDHR article -> theme group mapping behind the `data/udhr-articles` task.
 * @module
 */

/** Theme groups, in label-id order, with the articles each holds (0 is the preamble). */
export const ARTICLE_GROUPS: { label: string; articles: number[] }[] = [
  { label: "foundations", articles: [0, 1, 2] },
  { label: "civil-rights", articles: [3, 4, 5, 6, 7, 8, 9, 10, 11] },
  { label: "rights-in-society", articles: [12, 13, 14, 15, 16, 17] },
  { label: "political-rights", articles: [18, 19, 20, 21] },
  { label: "economic-social-cultural", articles: [22, 23, 24, 25, 26, 27] },
  { label: "duties-and-order", articles: [28, 29, 30] },
];

/** The group label of an article number. */
export function groupOf(article: number): string {
  const g = ARTICLE_GROUPS.find((x) => x.articles.includes(article));
  if (!g) throw new Error(`UDHR article ${article} is not in any group`);
  return g.label;
}
