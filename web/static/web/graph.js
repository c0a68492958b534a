// Draws every [data-graph-json] element's graph (the attribute holds it as JSON) with
// cytoscape and dagre, nodes coloured by status; with data-poll, refreshes the statuses
// from that URL every two seconds until the run is finished. No inline code: the page's
// Content Security Policy allows scripts from this origin only.
(function () {
  "use strict";
  var COLOURS = {
    pending: "#667085", queued: "#175cd3", running: "#175cd3", waiting: "#175cd3",
    retry_wait: "#175cd3", waiting_approval: "#93370d", succeeded: "#067647",
    failed: "#b42318", needs_attention: "#b42318", cancelled: "#b42318", rejected: "#b42318",
    skipped: "#98a2b3", compensated: "#067647",
    added: "#067647", removed: "#b42318", changed: "#93370d", same: "#667085"
  };
  var registered = false;

  function elements(graph) {
    var nodes = graph.nodes.map(function (n) {
      var label = n.label + (n.status ? "\n" + n.status.replace(/_/g, " ") : "");
      return { data: { id: n.id, label: label, status: n.status || "same", kind: n.kind } };
    });
    var edges = graph.edges.map(function (e) {
      return { data: { id: e.source + "->" + e.target, source: e.source, target: e.target } };
    });
    return nodes.concat(edges);
  }

  function draw(container) {
    if (container.dataset.drawn || typeof cytoscape === "undefined") { return; }
    if (!registered && typeof cytoscapeDagre !== "undefined") {
      cytoscape.use(cytoscapeDagre);
      registered = true;
    }
    var graph = JSON.parse(container.dataset.graphJson);
    container.dataset.drawn = "1";
    var cy = cytoscape({
      container: container,
      elements: elements(graph),
      userZoomingEnabled: true,
      boxSelectionEnabled: false,
      autoungrabify: true,
      style: [
        { selector: "node", style: {
          "shape": "round-rectangle", "width": 150, "height": 46, "label": "data(label)",
          "text-wrap": "wrap", "text-valign": "center", "color": "#fff", "font-size": 11,
          "background-color": "#667085"
        } }
      ].concat(Object.keys(COLOURS).map(function (status) {
        // A data selector, so a node's colour follows its status as polling changes it.
        return { selector: "node[status = '" + status + "']", style: { "background-color": COLOURS[status] } };
      })).concat([
        { selector: "node[kind = 'approval']", style: { "shape": "diamond", "width": 120, "height": 70 } },
        { selector: "edge", style: {
          "width": 2, "line-color": "#98a2b3", "target-arrow-color": "#98a2b3",
          "target-arrow-shape": "triangle", "curve-style": "bezier"
        } }
      ]),
      layout: { name: registered ? "dagre" : "breadthfirst", rankDir: "LR", nodeSep: 20, rankSep: 50 }
    });
    container.cy = cy;
    container.dataset.statuses = JSON.stringify(statuses(graph));
    if (container.dataset.poll && !graph.terminal) { poll(container); }
  }

  function statuses(graph) {
    var out = {};
    graph.nodes.forEach(function (n) { out[n.id] = n.status; });
    return out;
  }

  function poll(container) {
    window.setTimeout(function () {
      fetch(container.dataset.poll, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (response) {
          // Redirected (to the login page, once the session expired): stop asking.
          if (response.redirected) { return { stop: true }; }
          return response.ok ? response.json() : null;
        })
        .then(function (graph) {
          if (graph && graph.stop) { return; }
          if (!graph) { poll(container); return; }
          graph.nodes.forEach(function (n) {
            var node = container.cy.getElementById(n.id);
            node.data("status", n.status);
            node.data("label", n.label + "\n" + n.status.replace(/_/g, " "));
          });
          container.dataset.statuses = JSON.stringify(statuses(graph));
          container.dataset.runStatus = graph.status;
          if (!graph.terminal) { poll(container); }
        })
        .catch(function () { poll(container); });
    }, 2000);
  }

  function drawAll(root) {
    (root || document).querySelectorAll("[data-graph-json]").forEach(draw);
  }

  document.addEventListener("DOMContentLoaded", function () { drawAll(document); });
  // After an htmx swap (the editor's preview): the swapped-in element is new, so look again.
  document.addEventListener("htmx:afterSettle", function () { drawAll(document); });
})();
