/** A function's name: a letter, then letters, digits and `_`; 64 at most. */
export const FUNCTION_NAME = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;
