// The GraphiQL page crm-graph serves at GET /graphql (not in production).
//
// Everything it needs is in this bundle: no CDN, no request to anything but the API itself.
// The API key is typed into the field above the editor and kept in sessionStorage, for this
// tab only (never localStorage, never GraphiQL's header editor); setting it hands GraphiQL a
// new fetcher, and GraphiQL fetches the schema again by itself, so Docs works at once.
// The default query and variables come from the page (a JSON script element the app fills in).
import React, { useCallback, useMemo, useState } from "react";
import { createRoot } from "react-dom/client";
import { GraphiQL } from "graphiql";
import { createGraphiQLFetcher } from "@graphiql/toolkit";
import "graphiql/graphiql.css";
import "./page.css";

const KEY_STORAGE = "crm-graph:api-key";
const config = JSON.parse(document.getElementById("crm-graph-config").textContent);

function readKey() {
  try {
    return window.sessionStorage.getItem(KEY_STORAGE) || "";
  } catch {
    return "";
  }
}

function noKeyFetcher() {
  return Promise.resolve({
    errors: [{ message: "Enter an API key in the field above (crm-graph keys create)." }],
  });
}

function KeyBar({ apiKey, onKey }) {
  const [draft, setDraft] = useState(apiKey);
  const submit = useCallback(
    (event) => {
      event.preventDefault();
      onKey(draft.trim());
    },
    [draft, onKey],
  );
  return (
    <form className="crm-keybar" onSubmit={submit}>
      <label htmlFor="crm-api-key">API key</label>
      <input
        id="crm-api-key"
        name="api-key"
        type="password"
        autoComplete="off"
        spellCheck="false"
        placeholder="crm_…"
        value={draft}
        onChange={(event) => setDraft(event.target.value)}
      />
      <button type="submit" id="crm-api-key-use">
        Use key
      </button>
      <span className="crm-keystate" id="crm-api-key-state">
        {apiKey ? "key set for this tab" : "no key: requests are refused"}
      </span>
    </form>
  );
}

function Page() {
  const [apiKey, setApiKey] = useState(readKey);
  const onKey = useCallback((key) => {
    try {
      if (key) window.sessionStorage.setItem(KEY_STORAGE, key);
      else window.sessionStorage.removeItem(KEY_STORAGE);
    } catch {
      // storage refused (private mode): the key lives in this page only
    }
    setApiKey(key);
  }, []);
  const fetcher = useMemo(
    () =>
      apiKey
        ? createGraphiQLFetcher({
            url: config.url,
            headers: { Authorization: `Bearer ${apiKey}` },
          })
        : noKeyFetcher,
    [apiKey],
  );
  return (
    <div className="crm-page">
      <KeyBar apiKey={apiKey} onKey={onKey} />
      <div className="crm-graphiql">
        <GraphiQL
          fetcher={fetcher}
          defaultQuery={config.defaultQuery}
          variables={config.defaultVariables}
          shouldPersistHeaders={false}
          isHeadersEditorEnabled={false}
        />
      </div>
    </div>
  );
}

createRoot(document.getElementById("graphiql")).render(<Page />);
