/*
 * Upgrades every <figure class="vn-map"> rendered by templates/_map.html into a Leaflet map
 * with OpenStreetMap tiles. The inline SVG stays underneath and the Leaflet layer is only
 * revealed after the first tile has loaded, so offline visitors keep the SVG map.
 * Pins come from the <script type="application/json" class="vn-map__pins"> block.
 * No inline code: loaded with <script src defer> after vendor/leaflet/leaflet.js.
 */
(function () {
  "use strict";

  var TILE_URL = "https://tile.openstreetmap.org/{z}/{x}/{y}.png";
  var ATTRIBUTION = '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a>';

  function readPins(figure) {
    var block = figure.querySelector("script.vn-map__pins");
    if (!block) return [];
    try {
      var data = JSON.parse(block.textContent || "[]");
      return Array.isArray(data) ? data.filter(function (p) {
        return isFinite(p.lat) && isFinite(p.lon);
      }) : [];
    } catch (e) {
      return [];
    }
  }

  function link(label, url) {
    var a = document.createElement("a");
    a.href = url;
    a.textContent = label || "";
    return a;
  }

  function popupContent(pin) {
    // Built from DOM nodes (text only), never from HTML strings.
    var node;
    if (pin.links && pin.links.length) { // a trip's stop: its landmark page and its photos
      node = document.createElement("div");
      var title = document.createElement("strong");
      title.textContent = pin.label || "";
      node.appendChild(title);
      pin.links.forEach(function (each) {
        node.appendChild(document.createElement("br"));
        node.appendChild(link(each.label, each.url));
      });
      return node;
    }
    if (pin.url) {
      node = document.createElement("a");
      node.href = pin.url;
    } else {
      node = document.createElement("span");
    }
    node.textContent = pin.label || "";
    return node;
  }

  function upgrade(figure) {
    if (figure.getAttribute("data-map-ready")) return;
    figure.setAttribute("data-map-ready", "1");
    var holder = figure.querySelector(".vn-map__leaflet");
    var svg = figure.querySelector(".vn-map__svg");
    if (!holder || !svg) return;

    var height = parseInt(figure.getAttribute("data-height"), 10) || 360;
    figure.style.position = "relative";
    holder.hidden = false;
    holder.style.position = "absolute";
    holder.style.left = "0";
    holder.style.top = "0";
    holder.style.width = "100%";
    holder.style.height = height + "px";
    holder.style.visibility = "hidden"; // sized (so tiles load) but invisible until they do

    var pins = readPins(figure);
    var map = L.map(holder, { scrollWheelZoom: false });
    var tiles = L.tileLayer(TILE_URL, { maxZoom: 19, attribution: ATTRIBUTION });
    tiles.once("tileload", function () { // not "load": Leaflet fires it after failed tiles too
      holder.style.visibility = "visible";
      svg.setAttribute("aria-hidden", "true");
    });
    tiles.addTo(map);

    var markers = pins.map(function (pin) {
      var options = { title: pin.label || "" };
      if (pin.number !== undefined) { // a numbered stop of a trip album
        var disc = document.createElement("span");
        disc.textContent = String(pin.number);
        options.icon = L.divIcon({ className: "vn-map__num", html: disc, iconSize: [26, 26] });
      }
      var marker = L.marker([pin.lat, pin.lon], options);
      if (pin.label) marker.bindPopup(popupContent(pin));
      return marker.addTo(map);
    });

    if (markers.length === 1) {
      map.setView([pins[0].lat, pins[0].lon], 13);
    } else if (markers.length > 1) {
      map.fitBounds(L.featureGroup(markers).getBounds(), { paddingTopLeft: [24, 48], paddingBottomRight: [24, 16], maxZoom: 13 });
    } else {
      map.fitBounds([[8.4, 102.1], [23.4, 109.5]]);
    }
  }

  function init() {
    if (typeof L === "undefined") return; // Leaflet missing: the SVG map stays
    if (navigator.onLine === false) return; // offline: no point requesting tiles
    var figures = document.querySelectorAll("figure.vn-map");
    for (var i = 0; i < figures.length; i++) {
      try {
        upgrade(figures[i]);
      } catch (e) {
        // Leave the SVG map in place on any failure.
        if (window.console) console.warn("map upgrade failed", e);
      }
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
