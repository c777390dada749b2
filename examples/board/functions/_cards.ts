// Helpers of the board's functions (a leading _ keeps a file from being a
// function). A card's column is its `column` field; cards written before
// there were columns (no `column`) are in the first column, "todo".
import type { DatabaseReader, Filter, Row } from "@pylon-workers/functions";

export interface Card extends Row {
  title: string;
  done: boolean;
  position: number;
  createdAt: string;
  author?: string | null;
  column?: string | null;
  archived?: boolean | null;
}

export const FIRST_COLUMN = "todo";
/** A query's largest page (docs/queries.md). */
export const PAGE = 1000;

export function columnOf(card: Card): string {
  return card.column ?? FIRST_COLUMN;
}

/** The live (not archived) cards of `column`. */
export function inColumn(column: string): Filter {
  const where: Filter = column === FIRST_COLUMN ? { $or: [{ column }, { column: null }] } : { column };
  return { $and: [where, { archived: { $ne: true } }] };
}

/** The cards of `column` by position (the first 1000). */
export function cardsIn(db: DatabaseReader, column: string): Promise<Card[]> {
  return db.query<Card>({ entity: "Card", where: inColumn(column), order: ["position", "createdAt"], limit: PAGE });
}
