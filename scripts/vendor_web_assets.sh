#!/usr/bin/env bash
# Fetch MathJax 3, require.js and the Jupyter widgets HTML manager from the npm registry at build time and copy
# the files the site needs under book/_static/vendor/, so the built pages render math and saved widget state
# with no network. Nothing here is committed (see .gitignore).
set -euo pipefail
dest=${1:-book/_static/vendor}
work=${VENDOR_WORK:-_build/npm}
mkdir -p "$work" "$dest"
if [ ! -f "$work/node_modules/mathjax/es5/tex-chtml.js" ]; then
  npm install --prefix "$work" --no-audit --no-fund --no-save --silent \
    mathjax@3.2.2 requirejs@2.3.7 @jupyter-widgets/html-manager@1.0.15
fi
nm="$work/node_modules"
rm -rf "$dest/mathjax" "$dest/widgets"
mkdir -p "$dest/mathjax/output" "$dest/mathjax/input" "$dest/widgets"
cp "$nm/mathjax/es5/tex-chtml.js" "$dest/mathjax/"
cp -r "$nm/mathjax/es5/output/chtml" "$dest/mathjax/output/"
cp -r "$nm/mathjax/es5/input/tex" "$dest/mathjax/input/"
cp -r "$nm/mathjax/es5/ui" "$nm/mathjax/es5/a11y" "$dest/mathjax/"
cp "$nm/requirejs/require.js" "$dest/require.js"
# embed-amd.js and the icon fonts its stylesheet refers to by relative name.
find "$nm/@jupyter-widgets/html-manager/dist" -maxdepth 1 -type f \
  \( -name 'embed-amd.js' -o -name 'libembed-amd.js' -o -name '*.woff*' -o -name '*.ttf' -o -name '*.eot' -o -name '*.svg' \) \
  -exec cp {} "$dest/widgets/" \;
touch "$dest/.stamp"
echo "vendored web assets into $dest ($(du -sh "$dest" | cut -f1))"
