// node tests/node-engines.js DIR -- checks that the running Node.js satisfies
// the "engines.node" range (">=MAJOR[.MINOR[.PATCH]]") of DIR/package.json.
// Prints why and exits 1 when it does not. Written for any Node.js, however
// old, so that the npm-based tests fail with this message rather than with a
// syntax error or a package's own refusal.
'use strict';
var fs = require('fs');
var path = require('path');

var file = path.join(process.argv[2] || '.', 'package.json');
var range = ((JSON.parse(fs.readFileSync(file, 'utf8')).engines || {}).node || '').trim();
var m = /^>=\s*(\d+)(?:\.(\d+))?(?:\.(\d+))?$/.exec(range);
if (!m) {
  console.log(file + ': engines.node must be ">=MAJOR[.MINOR[.PATCH]]", not "' + range + '"');
  process.exit(1);
}
var want = [+m[1], +(m[2] || 0), +(m[3] || 0)];
var have = process.versions.node.split('.').map(Number);
for (var i = 0; i < 3; i++) {
  if (have[i] > want[i]) break;
  if (have[i] < want[i]) {
    console.log('Node.js ' + process.version + ' is not supported: ' + file +
                ' needs Node.js ' + range);
    process.exit(1);
  }
}
