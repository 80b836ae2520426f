/* Geodesy of the phone page, for when it has no network: distances and bearings on the WGS84 ellipsoid
 * (Vincenty's inverse formula, 1975), and the GCJ-02 / BD-09 offsets of Chinese web maps (the public
 * algorithm, as gis/chinese_offsets.py writes it) for typed AMap coordinates and navigation links.
 * Exposed as window.RiskatlasGeo; the tests compare it with PostGIS and pyproj.
 */
var RiskatlasGeo = (function () {
  'use strict';
  var PI = Math.PI, RAD = PI / 180;
  var WGS_A = 6378137, WGS_F = 1 / 298.257223563, WGS_B = WGS_A * (1 - WGS_F);

  /** Geodesic distance (m) and initial bearing (degrees clockwise from north) from point 1 to point 2. */
  function inverse(lon1, lat1, lon2, lat2) {
    var L = (lon2 - lon1) * RAD;
    var U1 = Math.atan((1 - WGS_F) * Math.tan(lat1 * RAD)), U2 = Math.atan((1 - WGS_F) * Math.tan(lat2 * RAD));
    var sU1 = Math.sin(U1), cU1 = Math.cos(U1), sU2 = Math.sin(U2), cU2 = Math.cos(U2);
    var lambda = L, prev, sL, cL, sS, cS, sigma, sA, c2A, c2M, C, i = 0;
    do {
      sL = Math.sin(lambda); cL = Math.cos(lambda);
      sS = Math.sqrt(Math.pow(cU2 * sL, 2) + Math.pow(cU1 * sU2 - sU1 * cU2 * cL, 2));
      if (sS === 0) return { distance: 0, bearing: 0 };
      cS = sU1 * sU2 + cU1 * cU2 * cL;
      sigma = Math.atan2(sS, cS);
      sA = cU1 * cU2 * sL / sS;
      c2A = 1 - sA * sA;
      c2M = c2A ? cS - 2 * sU1 * sU2 / c2A : 0;
      C = WGS_F / 16 * c2A * (4 + WGS_F * (4 - 3 * c2A));
      prev = lambda;
      lambda = L + (1 - C) * WGS_F * sA * (sigma + C * sS * (c2M + C * cS * (-1 + 2 * c2M * c2M)));
    } while (Math.abs(lambda - prev) > 1e-12 && ++i < 200);
    var u2 = c2A * (WGS_A * WGS_A - WGS_B * WGS_B) / (WGS_B * WGS_B);
    var A = 1 + u2 / 16384 * (4096 + u2 * (-768 + u2 * (320 - 175 * u2)));
    var B = u2 / 1024 * (256 + u2 * (-128 + u2 * (74 - 47 * u2)));
    var dS = B * sS * (c2M + B / 4 * (cS * (-1 + 2 * c2M * c2M) - B / 6 * c2M * (-3 + 4 * sS * sS) * (-3 + 4 * c2M * c2M)));
    var az = Math.atan2(cU2 * sL, cU1 * sU2 - sU1 * cU2 * cL) / RAD;
    return { distance: WGS_B * A * (sigma - dS), bearing: (az + 360) % 360 };
  }

  var KA = 6378245.0, EE = 0.00669342162296594323, X_PI = PI * 3000 / 180;
  function outOfChina(lon, lat) { return !(lon >= 72.004 && lon <= 137.8347 && lat >= 0.8293 && lat <= 55.8271); }
  function tLat(x, y) {
    var r = -100 + 2 * x + 3 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x));
    r += (20 * Math.sin(6 * x * PI) + 20 * Math.sin(2 * x * PI)) * 2 / 3;
    r += (20 * Math.sin(y * PI) + 40 * Math.sin(y / 3 * PI)) * 2 / 3;
    return r + (160 * Math.sin(y / 12 * PI) + 320 * Math.sin(y * PI / 30)) * 2 / 3;
  }
  function tLon(x, y) {
    var r = 300 + x + 2 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x));
    r += (20 * Math.sin(6 * x * PI) + 20 * Math.sin(2 * x * PI)) * 2 / 3;
    r += (20 * Math.sin(x * PI) + 40 * Math.sin(x / 3 * PI)) * 2 / 3;
    return r + (150 * Math.sin(x / 12 * PI) + 300 * Math.sin(x / 30 * PI)) * 2 / 3;
  }
  /** WGS84 -> GCJ-02 (AMap, Tencent); unchanged outside the China box. */
  function wgsToGcj(lon, lat) {
    if (outOfChina(lon, lat)) return [lon, lat];
    var dLat = tLat(lon - 105, lat - 35), dLon = tLon(lon - 105, lat - 35);
    var m = 1 - EE * Math.pow(Math.sin(lat * RAD), 2), sm = Math.sqrt(m);
    dLat = dLat * 180 / ((KA * (1 - EE)) / (m * sm) * PI);
    dLon = dLon * 180 / (KA / sm * Math.cos(lat * RAD) * PI);
    return [lon + dLon, lat + dLat];
  }
  /** GCJ-02 -> WGS84 by fixed-point iteration on the forward transform (to 1e-9 degrees). */
  function gcjToWgs(lon, lat) {
    if (outOfChina(lon, lat)) return [lon, lat];
    var x = lon, y = lat;
    for (var i = 0; i < 10; i++) {
      var f = wgsToGcj(x, y), ex = f[0] - lon, ey = f[1] - lat;
      x -= ex; y -= ey;
      if (Math.max(Math.abs(ex), Math.abs(ey)) < 1e-9) break;
    }
    return [x, y];
  }
  /** GCJ-02 -> BD-09 (Baidu). */
  function gcjToBd(lon, lat) {
    var z = Math.sqrt(lon * lon + lat * lat) + 0.00002 * Math.sin(lat * X_PI);
    var th = Math.atan2(lat, lon) + 0.000003 * Math.cos(lon * X_PI);
    return [z * Math.cos(th) + 0.0065, z * Math.sin(th) + 0.006];
  }
  return { inverse: inverse, wgsToGcj: wgsToGcj, gcjToWgs: gcjToWgs, gcjToBd: gcjToBd };
})();
