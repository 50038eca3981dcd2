// The console is served by gatewayd from the same origin as the API, so it needs no proxy
// in production; `npm run dev` proxies the API to a running gatewayd (GATEWAYD_API).
import { defineConfig } from 'vite';

export default defineConfig({
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: false },
  server: {
    proxy: {
      '/api': process.env.GATEWAYD_API || 'http://127.0.0.1:7070',
      '/metrics': process.env.GATEWAYD_API || 'http://127.0.0.1:7070',
    },
  },
});
