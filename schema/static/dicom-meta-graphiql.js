// Starts GraphiQL on this page's own origin. Strawberry's page, minus the CDN and the
// Django CSRF cookie: the example comes from the page, and ?q= / ?variables= in the URL
// keep a query shareable and survive a reload.
(function () {
  "use strict";

  const example = JSON.parse(document.getElementById("graphiql-example").textContent);
  const parameters = Object.fromEntries(new URLSearchParams(window.location.search));

  function updateURL(changes) {
    Object.assign(parameters, changes);
    const kept = Object.entries(parameters).filter(function (entry) {
      return Boolean(entry[1]);
    });
    history.replaceState(null, "", "?" + new URLSearchParams(kept).toString());
  }

  // The page is served at the GraphQL endpoint itself; no subscriptions, so no websocket.
  const fetcher = GraphiQL.createFetcher({ url: window.location.href.split("?")[0] });
  const explorerPlugin = GraphiQLPluginExplorer.explorerPlugin();

  function DicomMetaGraphiQL() {
    const [query, setQuery] = React.useState(parameters.q || example.query);
    const [variables, setVariables] = React.useState(parameters.variables || example.variables);
    const [headers, setHeaders] = React.useState(parameters.headers);

    return React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultEditorToolsVisibility: true,
      plugins: [explorerPlugin],
      query: query,
      variables: variables,
      headers: headers,
      onEditQuery: function (value) {
        setQuery(value);
        updateURL({ q: value });
      },
      onEditVariables: function (value) {
        setVariables(value);
        updateURL({ variables: value });
      },
      onEditHeaders: setHeaders,
      inputValueDeprecation: true,
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: true,
    });
  }

  ReactDOM.createRoot(document.getElementById("graphiql")).render(
    React.createElement(DicomMetaGraphiQL),
  );
})();
