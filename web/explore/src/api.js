// Talking to /graphql with the key the analyst entered (kept in sessionStorage: for this tab).

const KEY = "crm-graph.explore.key";

export function storedKey() {
  return sessionStorage.getItem(KEY);
}

export function storeKey(key) {
  sessionStorage.setItem(KEY, key);
}

export function forgetKey() {
  sessionStorage.removeItem(KEY);
}

/** An answer the page cannot show: `forbidden` when the key may not see it. */
export class ApiError extends Error {
  constructor(message, { code = null, field = null } = {}) {
    super(message);
    this.code = code;
    this.field = field;
  }
  get forbidden() {
    return this.code === "FORBIDDEN";
  }
}

/**
 * Post a document. Resolves to `{ data, denied }`: `denied` maps each field the key may not see
 * (FORBIDDEN errors with data beside them) to the API's message. Rejects with an ApiError when
 * nothing came back (no data at all, HTTP or network failure).
 */
export async function gql(query, variables = {}) {
  const key = storedKey();
  let response;
  try {
    response = await fetch(new URL("../graphql", document.baseURI), {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        ...(key ? { Authorization: `Bearer ${key}` } : {}),
      },
      body: JSON.stringify({ query, variables }),
    });
  } catch (e) {
    throw new ApiError(`the server cannot be reached (${e.message})`);
  }
  let body;
  try {
    body = await response.json();
  } catch {
    throw new ApiError(`the server answered ${response.status} without JSON`);
  }
  const errors = body.errors || [];
  const denied = {};
  for (const error of errors) {
    const ext = error.extensions || {};
    if (ext.code === "FORBIDDEN") denied[ext.field || (error.path || []).join(".")] = error.message;
  }
  const fatal = errors.find((e) => (e.extensions || {}).code !== "FORBIDDEN");
  if (!body.data || Object.values(body.data).every((v) => v === null)) {
    const first = fatal || errors[0];
    if (first) {
      const ext = first.extensions || {};
      throw new ApiError(first.message, { code: ext.code, field: ext.field });
    }
    if (!response.ok) throw new ApiError(`the server answered ${response.status}`);
  }
  if (fatal && body.data) console.warn("partial answer", errors);
  return { data: body.data, denied, errors };
}
