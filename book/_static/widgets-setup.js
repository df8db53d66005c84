// Loaded between require.js and the widget manager (vendor/widgets/embed-amd.js) on every page.
(function () {
  // 1. The manager loads its icon fonts from the folder require.js resolves its module name to, which is the page's
  //    own folder unless told otherwise: point that name at the vendored copy.
  var here = document.currentScript.src;
  var vendor = here.slice(0, here.lastIndexOf("/") + 1) + "vendor/widgets";
  require.config({ paths: { "@jupyter-widgets/html-manager/dist": vendor } });

  // 2. The manager typesets widget labels with MathJax 2's MathJax.Hub.Queue; the book serves MathJax 3, whose
  //    equivalent is MathJax.typesetPromise. Without this bridge every labelled control throws on render.
  function bridge() {
    var mj = window.MathJax;
    if (mj && !mj.Hub) {
      mj.Hub = {
        Queue: function (job) {
          if (window.MathJax.typesetPromise && job && job[2]) window.MathJax.typesetPromise([job[2]]);
        },
      };
    }
  }
  document.addEventListener("DOMContentLoaded", bridge);
  window.addEventListener("load", bridge);
})();
